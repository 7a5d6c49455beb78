package pipeline

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

const servicesFile = `name: s
steps:
- name: test
  image: golang:1.26
  services:
  - name: db
    image: postgres:16
    env:
      POSTGRES_PASSWORD: test
    ports: [5432]
  - name: cache
    image: redis:7
    command: [redis-server]
    args: [--port, "6380"]
    ports: 6380
    ready:
      command: [redis-cli, -p, "6380", ping]
      timeout: 30s
    resources:
      cpu: 100m
      memory: 64Mi
  - name: worker
    image: busybox:1
  commands: [go test ./...]
`

// TestParseServices: services keep their fields in the file's order; a service with
// ports and no check waits for its first port, one without either has no check.
func TestParseServices(t *testing.T) {
	def, err := Parse([]byte(servicesFile))
	if err != nil {
		t.Fatal(err)
	}
	got := def.Pipeline.Steps[0].Services
	if len(got) != 3 {
		t.Fatalf("%d services", len(got))
	}
	db, cache, worker := got[0], got[1], got[2]
	if db.Name != "db" || db.Image != "postgres:16" || !reflect.DeepEqual(db.Env, []EnvVar{{"POSTGRES_PASSWORD", "test"}}) ||
		!reflect.DeepEqual(db.Ports, []int32{5432}) || !reflect.DeepEqual(db.Ready, &Readiness{TCP: 5432, Timeout: DefaultReadyTimeout}) || db.Line != 6 {
		t.Errorf("db %+v", db)
	}
	if !reflect.DeepEqual(cache.Command, []string{"redis-server"}) || !reflect.DeepEqual(cache.Args, []string{"--port", "6380"}) ||
		!reflect.DeepEqual(cache.Ports, []int32{6380}) || !reflect.DeepEqual(cache.Ready, &Readiness{Command: []string{"redis-cli", "-p", "6380", "ping"}, Timeout: 30 * time.Second}) ||
		cache.Resources.Requests.Cpu().String() != "100m" {
		t.Errorf("cache %+v", cache)
	}
	if worker.Ready != nil || worker.Ports != nil {
		t.Errorf("worker %+v", worker)
	}
	if s := cache.Ready.String(); s != "command redis-cli -p 6380 ping" {
		t.Errorf("ready %q", s)
	}
}

func TestParseServicesErrors(t *testing.T) {
	five := "  services:\n" + strings.Repeat("  - {name: a, image: x:1}\n", MaxServices+1)
	for _, c := range []struct{ name, in, want string }{
		{"not a list", "services: {name: db}", "steps[0].services: must be a list, got a mapping (line 4)"},
		{"too many", five, "steps[0].services: must have at most 4 services, got 5 (line 5)"},
		{"duplicate name", "services: [{name: db, image: a:1}, {name: db, image: b:1}]", `steps[0].services[1].name: duplicate service name "db" (line 4)`},
		{"upper-case name", "services: [{name: DB, image: a:1}]", `steps[0].services[0].name: must be lower-case letters, digits and '-' (a DNS label), got "DB" (line 4)`},
		{"long name", "services: [{name: " + strings.Repeat("a", 41) + ", image: a:1}]", "must be at most 40 bytes, got 41"},
		{"no image", "services: [{name: db}]", "steps[0].services[0].image: is required (line 4)"},
		{"bad image", "services: [{name: db, image: \"UPPER:1\"}]", `steps[0].services[0].image: invalid image reference "UPPER:1"`},
		{"shared port", "services: [{name: a, image: a:1, ports: [80]}, {name: b, image: b:1, ports: [80]}]", `steps[0].services[1].ports: port 80 is already the service "a"'s`},
		{"port out of range", "services: [{name: a, image: a:1, ports: [70000]}]", "steps[0].services[0].ports[0]: must be a TCP port between 1 and 65535, got 70000"},
		{"both checks", "services: [{name: a, image: a:1, ready: {tcp: 1, command: [x]}}]", "steps[0].services[0].ready: must set either command or tcp, not both"},
		{"no check", "services: [{name: a, image: a:1, ready: {timeout: 1m}}]", "steps[0].services[0].ready: must set command or tcp"},
		{"long wait", "services: [{name: a, image: a:1, ready: {tcp: 1, timeout: 1h}}]", "steps[0].services[0].ready.timeout: must be at most 10m0s, got 1h0m0s"},
		{"empty command", "services: [{name: a, image: a:1, command: []}]", "steps[0].services[0].command: must not be empty"},
		{"reserved env", "services: [{name: a, image: a:1, env: {FLOWCI_X: y}}]", "the FLOWCI_ prefix is reserved"},
		{"unknown field", "services: [{name: a, image: a:1, privileged: true}]", "privileged"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := "name: s\nsteps:\n- name: t\n  " + strings.TrimPrefix(c.in, "  ") + "\n  commands: [x]\n"
			_, err := Parse([]byte(in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v\nwant %q", err, c.want)
			}
		})
	}
}
