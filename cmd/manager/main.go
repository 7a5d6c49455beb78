// Command manager is the flow-ci operator.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := runManager(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "flow-ci:", err)
		os.Exit(1)
	}
}
