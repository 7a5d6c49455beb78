// Command hello is the program `make demo` builds with flow-ci.
package main

import "fmt"

func greeting() string { return "hello from flow-ci" }

func main() { fmt.Println(greeting()) }
