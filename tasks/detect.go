package tasks

import "regexp"

var fourNumbers = regexp.MustCompile(`^\s*\d+\s+\d+\s+\d+\s+\d+\s*$`)

// Detect picks a pack for a problem when the user names none: four numbers
// are a Game of 24, anything else is generic.
func Detect(problem string) string {
	if fourNumbers.MatchString(problem) {
		if _, err := Get("game24"); err == nil {
			return "game24"
		}
	}
	return "generic"
}
