// Command manager is the flow-ci operator. The same binary runs inside each run's clone
// Job as `manager clone`, so no third-party git image is needed.
package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "clone" {
		os.Exit(runClone(os.Args[2:]))
	}
	if err := runManager(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "flow-ci:", err)
		os.Exit(1)
	}
}
