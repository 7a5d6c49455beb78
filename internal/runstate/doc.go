// Package runstate owns every change to a PipelineRun's status, for the operator and
// the local runner alike. It is pure: it reads a run's Jobs and pods (pods.go), derives,
// starts and ends steps (steps.go), moves the run through its phases and ends it, one
// function, End, for every way a run ends (lifecycle.go), decides which steps start,
// skip or stop (graph.go), concludes a pass (pass.go: the Reconciling condition and the
// observed generation), lists what changed in a pass (transitions.go), from which the
// controller makes events and metrics, and judges pods (watchdog.go), queues (fairqueue.go)
// and history (history.go).
//
// Nothing here talks to the API server, so every function has table tests.
package runstate
