package core_test

import (
	"testing"

	"github.com/ponder-rlm/ponder/core"
)

// The last final answer wins, as a model that corrects itself means it;
// a box wins over prose after it.
func TestExtractAnswerTakesTheLastFinalAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"answer lines", "Answer: 12\nwait, that's wrong.\nAnswer: 14", "14", true},
		{"answers on one line", "Answer: 12 ... wait ... Answer: 14", "14", true},
		{"answer is, corrected in one sentence", "The answer is 12. Wait, no, the answer is 14.", "14", true},
		{"hashes on one line", "#### 12 ... #### 14", "14", true},
		{"hashes on lines", "#### 12\nno:\n#### 14\n", "14", true},
		{"boxes", `\boxed{12} wait \boxed{14}`, "14", true},
		{"empty last hash falls back", "#### 12\n####", "12", true},
		{"empty last answer falls back", "Answer: 12\nThe answer is .", "12", true},
		{"answer on the next line", "The answer is\n\n14", "14", true},
		{"a box wins over prose after it", "So \\boxed{14}. The answer is correct.", "14", true},
		{"a box wins over a heading after it", "\\boxed{14}\n\n#### Check\n7 + 7 = 14", "14", true},
		{"a hash wins over an answer line after it", "#### 72\nI think the answer is right.", "72", true},
		{"minerva format", "Final Answer: The final answer is $14$. I hope it is correct.", "$14$", true},
		{"sentence after a number", "The answer is 3.5. This is the mean.", "3.5", true},
		{"initials stay whole", "Answer: J. K. Rowling", "J. K. Rowling", true},
		{"titles stay whole", "Answer: Dr. Who", "Dr. Who", true},
		{"expression with = 24", "Answer: (13 - 9) * (10 - 4) = 24. It uses each number once.", "(13 - 9) * (10 - 4) = 24", true},
		{"a verdict on the answer before it", "Answer: 14\nChecking: 7 + 7 = 14, so the answer is correct.", "14", true},
		{"a verdict on one line", "The answer is 14. Let me verify: yes, the answer is right.", "14", true},
		{"a verdict after a true-or-false answer", "Is 7 prime? The answer is true. Answer: correct", "true", true},
		{"only a verdict", "Answer: correct", "correct", true},
		{"no marker", "so 5 + 9 = 14", "", false},
		{"an answer to a part of the problem", "the answer to part one is 5", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := core.ExtractAnswer(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ExtractAnswer(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// "answer is" read mid-reasoning is no final answer: a qualified one
// ("the partial answer is 5"), one whose sentence goes on reasoning ("5,
// now we add 3"), or one the next sentence takes as a step ("5. Now we add
// 3"). A final answer at the end of a step, a line or a reply still is,
// and a check after it ("Now let me verify") leaves it final.
func TestExtractAnswerReadsOnlyFinalAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"partial answer mid-step", "the partial answer is 5, now we add 3", "", false},
		{"partial answer alone", "The partial answer is 5.", "", false},
		{"intermediate answer label", "Intermediate answer: 12", "", false},
		{"sub-answer", "The sub-answer is 4.", "", false},
		{"current answer so far", "So the current answer is 9", "", false},
		{"an intermediate answer before the final one", "The intermediate answer is 12. The final answer is 14.", "14", true},
		{"sub-answer before the answer", "The sub-answer is 4. Answer: 9", "9", true},
		{"reasoning goes on after a comma", "So the answer is 5, now we add 3 to get 8", "", false},
		{"reasoning goes on after and", "The answer is 5 and then we subtract 2", "", false},
		{"we still need", "The answer is 5; we still need to add 3", "", false},
		{"so far", "The answer is 5 so far", "", false},
		{"next sentence takes it as a step", "The answer is 5. Now we add 3 to get 8.", "", false},
		{"next line takes it as a step", "The answer is 5.\nNext, we add 3.", "", false},
		{"next sentence goes on, a later answer wins", "The answer is 5. Then we add 3. The answer is 8.", "8", true},
		{"final answer at the end of a step", "5 + 3 = 8, so the answer is 8.", "8", true},
		{"the final answer is", "The final answer is 14", "14", true},
		{"a check after the answer", "The answer is 14. Now let me verify: 7 + 7 = 14.", "14", true},
		{"a check on the next line", "The answer is 14.\nNow we check it: 7 + 7 = 14.", "14", true},
		{"commentary after the answer", "The answer is 14. It is even.", "14", true},
		{"a list answer", "Answer: 3, 5", "3, 5", true},
		{"a pair of values", "The answer is x = 3, y = 4.", "x = 3, y = 4", true},
		{"first as an adverb", "First, the answer is 7.", "7", true},
		// A sentence that opens with now, then or plus but does no more
		// work leaves the answer final.
		{"now we are done", "The answer is 18.\nNow we are done.", "18", true},
		{"now we're finished", "The answer is 6. Now we're finished.", "6", true},
		{"then, we are done", "The answer is $x^2 + 1$. Then, we are done.", "$x^2 + 1$", true},
		{"then restating the answer", "The answer is 6. Then, Janet has 6 eggs left.", "6", true},
		{"now, to summarize", "The answer is 18. Now, to summarize: Janet makes $18.", "18", true},
		{"plus, a remark", "Thus the answer is 6. Plus, this matches the estimate.", "6", true},
		{"we now have the result", "The answer is 18. We now have the final result.", "18", true},
		{"making sure is a check", "The answer is 18. I need to make sure: 9 * 2 = 18.", "18", true},
		{"now that", "So the answer is 18, now that we have computed everything.", "18", true},
		{"a closing then", "So it is 1 hour, then. The answer is 18, then.", "18, then", true},
		{"and now we're done", "The answer is 18 and now we're done.", "18 and now we're done", true},
		// A sentence that does more work with it takes it as a step.
		{"then we multiply", "The answer is 5. Then we multiply by 2.", "", false},
		{"next, multiply", "The answer is 5. Next, multiply by 2.", "", false},
		{"then arithmetic", "The answer is 5. Then 5 * 2 = 10.", "", false},
		{"next we find", "The answer is x = 3. Next, we find y.", "", false},
		{"then we get", "The answer is 5. Then we get 8 by adding 3.", "", false},
		{"we still need", "The answer is 5. We still need to subtract 2.", "", false},
		// Markdown emphasis is not part of the answer.
		{"bold label", "**Answer:** 18", "18", true},
		{"bold final answer label", "**Final Answer:** 18", "18", true},
		{"bold sentence", "**The answer is 18.**", "18", true},
		{"bold answer", "The answer is **18**.", "18", true},
		{"bold answer, then commentary", "The answer is **18**. It is even.", "18", true},
		{"bold partial answer", "**Partial answer:** 5", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := core.ExtractAnswer(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ExtractAnswer(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// A clause that only explains the answer is not part of it, so samples
// that agree vote together; an answer that holds commas, brackets or the
// clause's words as part of itself stays whole.
func TestExtractAnswerCutsTheExplanation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"which", "The answer is 5, which is the number of apples left.", "5", true},
		{"because", "The answer is 42 because 6 * 7 = 42.", "42", true},
		{"since", "The answer is 7 since 3 + 4 = 7.", "7", true},
		{"comma as", "The answer is 5, as 2 + 3 = 5.", "5", true},
		{"semicolon", "The answer is 18; this is what she makes every day.", "18", true},
		{"comma splice", "The answer is 18, that is what she makes every day.", "18", true},
		{"a value, then a bare which", "The answer is 5 which is the number of apples left.", "5", true},
		{"aside in parentheses", "The answer is 42 (since 6 * 7 = 42).", "42", true},
		{"unit in parentheses", "Answer: $18 (dollars)", "$18", true},
		{"a pair of values, then which", "The answer is x = 3, y = 4, which satisfies both equations.", "x = 3, y = 4", true},
		{"a point, then where", "The answer is (2, 3), where the two lines meet.", "(2, 3)", true},
		{"a fraction, then since", `The answer is \frac{1}{2}, since half of the pie is left.`, `\frac{1}{2}`, true},
		{"a word, then a comma and because", "The answer is Paris, because of its history.", "Paris", true},
		{"a word, then because", "The answer is Paris because it is the capital.", "Paris", true},
		{"a bold answer, then which", "The answer is **18**, which is even.", "18", true},
		{"a verdict with its reason yields", "Answer: 14\nThe answer is correct because 7 + 7 = 14.", "14", true},
		{"a clause that goes on reasoning", "The answer is 5, which we now add to 3.", "", false},
		{"a clause that does a step", "The answer is 5, which we multiply by 2.", "", false},
		{"a clause that takes it on", "The answer is 5, which is then multiplied by 2 to get 10.", "", false},
		{"a clause that ends with now", "The answer is 5, which is what she has now.", "5", true},
		// Whole answers.
		{"a list", "The answer is 1, 2 and 3.", "1, 2 and 3", true},
		{"a point", "The answer is (2, 3).", "(2, 3)", true},
		{"a fraction", `The answer is \frac{1}{2}.`, `\frac{1}{2}`, true},
		{"a reason as the answer", "The answer is because of its history.", "because of its history", true},
		{"a sentence with because", "The answer is that Rome fell because of overexpansion.", "that Rome fell because of overexpansion", true},
		{"a sentence with which", "The answer is the empire overextended its borders, which made defence costly.",
			"the empire overextended its borders, which made defence costly", true},
		{"since as a preposition", "The answer is the number of days since 1900.", "the number of days since 1900", true},
		{"a restrictive which", "The answer is the smallest number which is prime.", "the smallest number which is prime", true},
		{"a restrictive which after a word", "The answer is primes which are odd.", "primes which are odd", true},
		{"as well as", "The answer is apples, as well as pears.", "apples, as well as pears", true},
		{"two values with a semicolon", "The answer is x = 1; y = 2.", "x = 1; y = 2", true},
		{"a factor in parentheses", "The answer is 3 (x + 1).", "3 (x + 1)", true},
		{"a modulus in parentheses", "The answer is 5 (mod 7).", "5 (mod 7)", true},
		{"arithmetic in parentheses", "The answer is 12 (4 + 8).", "12", true},
		{"an interval", "The answer is [0, 1), since x must be non-negative.", "[0, 1)", true},
		{"a clause inside braces", `The answer is \text{yes, because it halts}.`, `\text{yes, because it halts}`, true},
		{"a hash answer is untouched", "#### 42 because 6 * 7 = 42", "42 because 6 * 7 = 42", true},
		{"a box is untouched", `\boxed{5, which is odd}`, "5, which is odd", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := core.ExtractAnswer(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ExtractAnswer(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// Samples that agree but explain their answer differently vote together.
func TestExplainedAnswersShareAVote(t *testing.T) {
	t.Parallel()
	p := core.GenericPack{}
	samples := []string{
		"The answer is 5.",
		"The answer is 5, which is the number of apples left.",
		"So the answer is 5 because 8 - 3 = 5.",
		"The answer is 5 (three were eaten).",
		"The answer to the question is 5.",
	}
	a, _ := p.ExtractAnswer(samples[0])
	want := p.Normalize(a)
	for _, s := range samples[1:] {
		got, ok := p.ExtractAnswer(s)
		if k := p.Normalize(got); !ok || k != want {
			t.Errorf("%q reads %q (key %q); want key %q, as %q has", s, got, k, want, samples[0])
		}
	}
}

// "The answer to <what> is x" is read as "the answer is x", unless <what>
// is a part of the problem on the way to its answer.
func TestExtractAnswerReadsTheAnswerToAQuestion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
		ok             bool
	}{
		{"the question", "The answer to the question is 6.", "6", true},
		{"the final answer to the problem", "The final answer to the problem is 14", "14", true},
		{"with a colon", "The answer to this problem is: 9", "9", true},
		{"a question in words", "So the answer to how many eggs Janet sells is 9.", "9", true},
		{"an expression", "The answer to 16 - 3 - 4 is 9.", "9", true},
		{"a question with is", "The answer to what is 2 + 2 is 4.", "4", true},
		{"a decimal in the phrase", "The answer to 3.5 + 1.5 is 5.", "5", true},
		{"then an explanation", "The answer to the question is 6, which is even.", "6", true},
		{"bold", "**The answer to the question is 6.**", "6", true},
		{"both parts", "The answer to both parts is 3 and 5.", "3 and 5", true},
		{"a part, then the question", "The answer to the first part is 4. The answer to the question is 9.", "9", true},
		{"a box wins", `\boxed{7}. The answer to the question is 6.`, "7", true},
		// On the way to the answer.
		{"the first part", "The answer to the first part is 5.", "", false},
		{"a step", "The answer to step 2 is 8, now we add 3.", "", false},
		{"a labelled part", "The answer to (a) is 4.", "", false},
		{"a numbered question", "The answer to question 1 is 4.", "", false},
		{"a sub-problem", "The answer to this sub-problem is 4.", "", false},
		{"a qualified answer", "The partial answer to the question is 5.", "", false},
		{"the next sentence takes it as a step", "The answer to the question is 5. Now we add 3.", "", false},
		{"answer to as a verb", "I will answer to the best of my ability. 5 + 4 = 9.", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := core.ExtractAnswer(tt.in)
			if got != tt.want || ok != tt.ok {
				t.Errorf("ExtractAnswer(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// Forms of one answer share a vote key; different answers never do.
func TestGenericNormalizeKeysOneAnswerOnce(t *testing.T) {
	t.Parallel()
	p := core.GenericPack{}
	same := [][]string{
		{"-5", "\u22125", "\u20135", " -5 ", "-5.", "$-5$", "-$5", "- 5", "-5.0", "\uff0d5"},
		{"1000", "1,000", "$1,000", "1000.00", "+1000", "1,000."},
		{"0.5", ".5", "0.50", "1/2", "2/4"},
		{"0", "-0", "0.0"},
		{"Paris", "paris", " Paris.", "PARIS"},
		{"x = 3", "x  =  3", "X = 3."},
		{"\u22123x", "-3x"},
	}
	for _, forms := range same {
		want := p.Normalize(forms[0])
		for _, f := range forms[1:] {
			if got := p.Normalize(f); got != want {
				t.Errorf("Normalize(%q) = %q, Normalize(%q) = %q; want one key", f, got, forms[0], want)
			}
		}
	}
	// Every pair here is two different answers.
	different := []string{"5", "-5", ".5", "5x", "5!", "5%", "5 apples", "55", "5/0", "1,5", "15", "5i", "x5", "5.5"}
	seen := map[string]string{}
	for _, a := range different {
		k := p.Normalize(a)
		if prev, ok := seen[k]; ok {
			t.Errorf("Normalize(%q) = Normalize(%q) = %q; want different keys", a, prev, k)
		}
		seen[k] = a
	}
}
