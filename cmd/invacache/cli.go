package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// command is one subcommand. run gets the parsed flag set's remaining
// arguments; it returns an error that the dispatcher prints as one line.
type command struct {
	name    string
	summary string
	usage   string // argument synopsis after the command name
	// setup declares the command's flags on fs and returns the function to
	// run after parsing.
	setup func(fs *flag.FlagSet, env *env) func(ctx context.Context, args []string) error
}

// env is what every command writes to.
type env struct {
	stdout, stderr io.Writer
}

func commands() []command {
	return []command{
		demoCommand(),
		invalidateCommand(),
		monitorCommand(),
		benchCommand(),
		chaosCommand(),
		relayCommand(),
	}
}

// usageError marks errors about how the command was called (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// run is the CLI without process-level concerns, so tests call it in-process.
func run(args []string, stdout, stderr io.Writer) int {
	return runContext(context.Background(), args, stdout, stderr)
}

// runContext runs one command; ctx ends on SIGINT/SIGTERM in the binary.
// Exit status: 0 success, 1 failure, 2 usage error.
func runContext(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	quietRedisLog(discardLogger()) // go-redis logs dial retries globally; the CLI reports errors itself
	if len(args) == 0 {
		printTopUsage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "version", "-version", "--version":
		printVersion(stdout)
		return 0
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			return runContext(ctx, []string{args[1], "--help"}, stdout, stderr)
		}
		printTopUsage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != name {
			continue
		}
		fs := flag.NewFlagSet("invacache "+c.name, flag.ContinueOnError)
		fs.SetOutput(io.Discard) // errors are printed once, as one line, below
		runFn := c.setup(fs, e)
		positional, err := parseInterspersed(fs, args[1:])
		if err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printCommandUsage(stdout, c, fs)
				return 0
			}
			fmt.Fprintf(stderr, "invacache %s: %s (see 'invacache %s --help')\n", c.name, oneLine(dashDash(err.Error())), c.name)
			return 2
		}
		if err := runFn(ctx, positional); err != nil {
			var ue usageError
			if errors.As(err, &ue) {
				fmt.Fprintf(stderr, "invacache %s: %s (see 'invacache %s --help')\n", c.name, oneLine(err.Error()), c.name)
				return 2
			}
			fmt.Fprintf(stderr, "invacache %s: %s\n", c.name, oneLine(err.Error()))
			return 1
		}
		return 0
	}
	fmt.Fprintf(stderr, "invacache: unknown command %q (see 'invacache help')\n", name)
	return 2
}

// oneLine keeps an error message to a single line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func printTopUsage(w io.Writer) {
	fmt.Fprintln(w, "invacache: tools for InvaCache-Go (in-process caches kept coherent over a Redis Pub/Sub bus)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Usage: invacache <command> [flags] [args]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Commands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'invacache <command> --help' for a command's flags, 'invacache --version' for the version.")
}

func printCommandUsage(w io.Writer, c command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: invacache %s %s\n\n%s\n\nFlags:\n", c.name, c.usage, c.summary)
	printFlags(w, fs)
}

// printFlags lists fs's flags in the "--flag" form that the README and the
// error messages use (the flag package prints "-flag").
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if name != "" {
			line += " " + name
		}
		fmt.Fprintf(w, "%s\n    \t%s", line, strings.ReplaceAll(usage, "\n", "\n    \t"))
		switch f.DefValue {
		case "", "0", "false", "0s":
		default:
			if g, ok := f.Value.(flag.Getter); ok {
				if _, isString := g.Get().(string); isString {
					fmt.Fprintf(w, " (default %q)", f.DefValue)
					break
				}
			}
			fmt.Fprintf(w, " (default %s)", f.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// singleDash finds a flag named with one dash in the flag package's errors
// ("flag provided but not defined: -bogus").
var singleDash = regexp.MustCompile(`(^|[ :])-([A-Za-z][A-Za-z0-9-]*)`)

// dashDash rewrites the flag package's "-flag" to the "--flag" form.
func dashDash(msg string) string { return singleDash.ReplaceAllString(msg, "$1--$2") }

// parseInterspersed parses flags placed before, between or after the
// positional arguments ("invalidate k1 --redis h:p k2"); after "--"
// everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
