package cli

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	v1 "github.com/meridian-platform/meridian/api/v1"
	"github.com/meridian-platform/meridian/client"
)

// IOStreams are the standard streams a command reads and writes; tests
// pass buffers.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
}

// StdStreams returns the process's standard streams.
func StdStreams() IOStreams { return IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr} }

// ExitError ends a command with a given exit code. With Silent set nothing
// more is printed (the command already said what it had to: `auth can-i`
// printing "no", `diff` printing differences).
type ExitError struct {
	Code   int
	Err    error
	Silent bool
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// silentExit returns an error that only sets the exit code.
func silentExit(code int) error { return &ExitError{Code: code, Silent: true} }

// NewRootCommand returns the `meridian` command with every CLI verb of this
// package. The caller adds the process verbs (console, node, dev).
func NewRootCommand(streams IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "meridian",
		Short: "Meridian: application networking and security for many sites",
		Long: `meridian is one binary for the console, the nodes and the CLI.

The CLI talks to a console through a context (server URL, console CA, token,
tenant, default namespace) kept in the CLI config file
(` + "`meridian config get-contexts`" + `, ` + "`meridian login`" + `).`,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetIn(streams.In)
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	AddCommands(root, streams)
	return root
}

// AddCommands adds the CLI verbs (apply, get, describe, delete, diff,
// patch, label, history, rollback, login, config, auth, create, audit,
// api-resources, site) to
// root. Errors are returned, not printed: run root with Execute.
func AddCommands(root *cobra.Command, streams IOStreams) {
	root.SilenceErrors = true
	root.SilenceUsage = true
	for _, c := range []*cobra.Command{
		newGetCommand(streams), newDescribeCommand(streams), newDeleteCommand(streams), newPatchCommand(streams),
		newLabelCommand(streams), newHistoryCommand(streams), newRollbackCommand(streams),
	} {
		c.ValidArgsFunction = completeKinds
		root.AddCommand(c)
	}
	root.AddCommand(
		newApplyCommand(streams),
		newDiffCommand(streams),
		newLoginCommand(streams),
		newConfigCommand(streams),
		newAuthCommand(streams),
		newCreateCommand(streams),
		newAuditCommand(streams),
		newAPIResourcesCommand(streams),
		newSiteCommand(streams),
		newEventsCommand(streams),
		newTopCommand(streams),
	)
}

// Execute runs cmd with args (nil: os.Args[1:]), prints an error the way
// the CLI does and returns the process exit code.
func Execute(cmd *cobra.Command, args []string, streams IOStreams) int {
	if args != nil {
		cmd.SetArgs(args)
	}
	err := cmd.Execute()
	if err == nil {
		return 0
	}
	return ReportError(streams.ErrOut, err)
}

// ReportError prints err as `Error: <message>` (with each field cause of a
// console Status on its own line) and returns the exit code it calls for.
func ReportError(w io.Writer, err error) int {
	code := 1
	var ee *ExitError
	if errors.As(err, &ee) {
		code = ee.Code
		if ee.Silent {
			return code
		}
		if ee.Err != nil {
			err = ee.Err
		}
	}
	var se *client.StatusError
	if errors.As(err, &se) {
		msg := se.Message
		if msg == "" {
			msg = se.Reason
		}
		// The console may repeat the causes in its message; they are
		// printed one per line below.
		if len(se.Causes) > 0 && se.Causes[0].Field != "" {
			if i := strings.Index(msg, ": "+se.Causes[0].Field+": "); i > 0 {
				msg = msg[:i]
			}
		}
		// Keep what the CLI wrapped around the Status (e.g. "originpool/shop: ").
		if full := err.Error(); se.Error() != full && strings.HasSuffix(full, se.Error()) {
			msg = strings.TrimSuffix(full, se.Error()) + msg
		}
		fmt.Fprintf(w, "Error: %s\n", msg)
		for _, c := range se.Causes {
			fmt.Fprintf(w, "  %s\n", c.String())
		}
		if se.Reason == v1.StatusReasonUnauthorized {
			fmt.Fprintln(w, "Hint: the token is missing, unknown or expired: run `meridian login`")
		}
		return code
	}
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	switch {
	case errors.As(err, &ua):
		fmt.Fprintf(w, "Error: %s\nHint: the context does not trust this console's CA: pass --certificate-authority FILE to `meridian login` or `meridian config set-context`\n", err)
		return code
	case errors.As(err, &hn):
		fmt.Fprintf(w, "Error: %s\nHint: the console's certificate does not name this host: use the address the console was started with (or its --hosts)\n", err)
		return code
	}
	var de *v1.DecodeError
	if errors.As(err, &de) {
		if fe := de.FieldErrors(); len(fe) > 0 {
			full := err.Error()
			msg := strings.TrimSuffix(strings.TrimSuffix(full, fe.Error()), ": ")
			if msg == full || msg == "" {
				msg = "invalid input"
			}
			fmt.Fprintf(w, "Error: %s\n", msg)
			for _, e := range fe {
				fmt.Fprintf(w, "  %s\n", e.Error())
			}
			return code
		}
	}
	fmt.Fprintf(w, "Error: %s\n", err)
	return code
}
