// Command manager is the flow-ci operator. The same binary runs inside each run's clone
// Job as `manager clone`, so no third-party git image is needed (it restores the run's
// caches too), as the step that saves them (`manager caches save`), and as the run
// archive (`manager archive`, its own Deployment).
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "clone" {
		os.Exit(runClone(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "caches" {
		os.Exit(runCaches(os.Args[2:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "archive" {
		if err := runArchive(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "flow-ci archive:", err)
			os.Exit(1)
		}
		return
	}
	if err := runManager(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "flow-ci:", err)
		os.Exit(1)
	}
}
