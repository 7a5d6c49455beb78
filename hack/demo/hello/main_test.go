package main

import "testing"

func TestGreeting(t *testing.T) {
	if got := greeting(); got != "hello from flow-ci" {
		t.Fatalf("greeting() = %q", got)
	}
}
