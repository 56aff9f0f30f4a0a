// Package tasks holds Ponder's task packs: the prompts a strategy sends for
// one kind of problem, how answers are read from the replies, how answers
// are compared, and readers for the public benchmark files. The simulator
// (llm/sim) and the eval harness use the same packs, so a prompt changed
// here changes everywhere.
//
//	pack, err := tasks.Get("gsm8k")
//	msgs := pack.SolvePrompt("Natalia sold clips to 48 of her friends ...")
//	answer, ok := pack.ExtractAnswer(reply)
package tasks
