// Package tasks holds Ponder's task packs: the prompts a strategy sends for
// one kind of problem, how answers are read from the replies, how answers
// are compared, and readers for the public benchmark files. The simulator
// (llm/sim) and the eval harness use the same packs, so a prompt changed
// here changes everywhere.
//
//	pack, err := tasks.Get("gsm8k")
//	msgs := pack.SolvePrompt("Natalia sold clips to 48 of her friends ...")
//	answer, ok := pack.ExtractAnswer(reply)
//
// Packs: generic, gsm8k, math and game24 (the Game of 24, with Tree of
// Thoughts' propose and value prompts and an exact checker). Around the
// policy's prompts sit those of the other models, each with its own system
// prompt and instruction: JudgePrompt, ValuePrompt (a pack's own when it is
// a Valuer), PRMPrompt, CritiquePrompt, RevisePrompt and AggregatePrompt,
// with ParseScore, ParseValue and ParseCritique to read the replies.
// Every prompt is laid out by core.LayoutPrompt; Identify reads any of them
// back (kind, pack, problem, steps), which is how the simulator knows what
// it is asked.
package tasks
