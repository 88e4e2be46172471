// Command meridian is the one binary of Meridian: console, node, dev and the CLI.
package main

import (
	"os"

	"github.com/meridian-platform/meridian/internal/cli"
	"github.com/meridian-platform/meridian/internal/console"
)

func main() {
	streams := cli.StdStreams()
	root := cli.NewRootCommand(streams)
	root.AddCommand(
		console.NewCommand(streams.Out, streams.ErrOut),
		console.NewDevCommand(streams.Out, streams.ErrOut),
		newNodeCommand(streams.Out, streams.ErrOut),
		newBenchCommand(streams.Out, streams.ErrOut),
	)
	os.Exit(cli.Execute(root, nil, streams))
}
