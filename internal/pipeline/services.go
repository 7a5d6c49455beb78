package pipeline

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flow-ci/flow-ci/api/v1alpha1"
)

// Limits on a step's services. Each is a container in the step's pod; the bounds keep
// the pod within what the API server accepts and what a node can start.
const (
	MaxServices        = 4
	maxServiceNameLen  = 40 // a container name: "service-" + name within a DNS label
	maxServicePorts    = 8
	maxServiceArgs     = 32
	maxServiceArgBytes = 4 << 10
	// DefaultReadyTimeout bounds a service's readiness check when the file sets none.
	DefaultReadyTimeout = time.Minute
	maxReadyTimeout     = 10 * time.Minute
)

var serviceName = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// Service is a program a step's commands test against (a database, a cache), run
// beside the step's container in its pod and reached on localhost.
type Service struct {
	// Name is a DNS label, unique in the step.
	Name  string
	Image string
	// Env is sorted by Name; services get only their own variables.
	Env []EnvVar
	// Command replaces the image's entrypoint and Args its arguments; nil keeps the
	// image's.
	Command, Args []string
	// Ports are the TCP ports it listens on, unique in the step (its services share
	// the pod's network).
	Ports []int32
	// Ready decides when the step may start; nil: as soon as the service has started.
	Ready *Readiness
	// Resources override the operator's default step resources, per resource.
	Resources Resources
	// Line is where the file declares the service.
	Line int
}

// Readiness is a service's readiness check: a command run in the service's container
// that exits 0, or a TCP port that accepts connections. Timeout bounds it.
type Readiness struct {
	Command []string
	TCP     int32
	Timeout time.Duration
}

var (
	serviceFields   = []string{"name", "image", "env", "command", "args", "ports", "ready", "resources"}
	readinessFields = []string{"command", "tcp", "timeout"}
)

// services converts a step's services list.
func (v *validator) services(n *yaml.Node, sp string) []Service {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		v.add(n, sp, "must be a list, got %s", describe(n))
		return nil
	}
	items := n.Content
	if len(items) > MaxServices {
		v.add(n, sp, "must have at most %d services, got %d", MaxServices, len(items))
		items = items[:MaxServices]
	}
	var out []Service
	names, ports := map[string]bool{}, map[int32]string{}
	for i, item := range items {
		ip := indexPath(sp, i)
		s, ok := v.service(item, ip)
		if !ok {
			continue
		}
		if names[s.Name] {
			v.add(item, ip+".name", "duplicate service name %s", quote(s.Name))
		}
		names[s.Name] = true
		for _, p := range s.Ports {
			if other, taken := ports[p]; taken {
				v.add(item, ip+".ports", "port %d is already the service %s's: a step's services share its pod's network", p, quote(other))
			}
			ports[p] = s.Name
		}
		out = append(out, s)
	}
	return out
}

func (v *validator) service(n *yaml.Node, ip string) (Service, bool) {
	f, ok := v.fields(n, ip, serviceFields)
	if !ok {
		return Service{}, false
	}
	s := Service{Line: n.Line}
	if name, ok := v.name(n, f["name"], ip+".name", maxServiceNameLen); ok {
		if !serviceName.MatchString(name) {
			v.add(f["name"], ip+".name", "must be lower-case letters, digits and '-' (a DNS label), got %s", quote(name))
		}
		s.Name = name
	}
	if in := f["image"]; in != nil {
		s.Image = v.image(in, ip+".image")
	} else {
		v.add(n, ip+".image", "is required")
	}
	if en := f["env"]; en != nil {
		s.Env = v.env(en, ip+".env")
	}
	if cn := f["command"]; cn != nil {
		s.Command = v.argv(cn, ip+".command")
	}
	if an := f["args"]; an != nil {
		s.Args = v.argv(an, ip+".args")
	}
	if pn := f["ports"]; pn != nil {
		s.Ports = v.ports(pn, ip+".ports")
	}
	if rn := f["resources"]; rn != nil {
		s.Resources = v.resources(rn, ip+".resources")
	}
	if rn := f["ready"]; rn != nil {
		s.Ready = v.readiness(rn, ip+".ready")
	} else if len(s.Ports) > 0 {
		// What a user of any CI expects of a database service: the step waits until it
		// accepts connections.
		s.Ready = &Readiness{TCP: s.Ports[0], Timeout: DefaultReadyTimeout}
	}
	return s, true
}

// argv converts a list of strings for a container's command or arguments.
func (v *validator) argv(n *yaml.Node, ap string) []string {
	if n.Kind != yaml.SequenceNode {
		v.add(n, ap, "must be a list of strings, got %s", describe(n))
		return nil
	}
	items := n.Content
	if len(items) > maxServiceArgs {
		v.add(n, ap, "must have at most %d items, got %d", maxServiceArgs, len(items))
		items = items[:maxServiceArgs]
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		p := indexPath(ap, i)
		s, ok := v.text(item, p)
		switch {
		case !ok:
			continue
		case len(s) > maxServiceArgBytes:
			v.add(item, p, "must be at most %d bytes, got %d", maxServiceArgBytes, len(s))
		case strings.IndexByte(s, 0) >= 0:
			v.add(item, p, "must not contain NUL characters")
		}
		out = append(out, s)
	}
	if len(out) == 0 && len(items) == 0 {
		v.add(n, ap, "must not be empty; omit it to keep the image's")
	}
	return out
}

func (v *validator) ports(n *yaml.Node, pp string) []int32 {
	items := []*yaml.Node{n}
	if n.Kind == yaml.SequenceNode {
		items = n.Content
	}
	if len(items) > maxServicePorts {
		v.add(n, pp, "must have at most %d ports, got %d", maxServicePorts, len(items))
		items = items[:maxServicePorts]
	}
	var out []int32
	for i, item := range items {
		p := pp
		if n.Kind == yaml.SequenceNode {
			p = indexPath(pp, i)
		}
		if port, ok := v.port(item, p); ok {
			out = append(out, port)
		}
	}
	return out
}

func (v *validator) port(n *yaml.Node, pp string) (int32, bool) {
	i, ok := v.integer(n, pp)
	if ok && (i < 1 || i > 65535) {
		v.add(n, pp, "must be a TCP port between 1 and 65535, got %d", i)
		return 0, false
	}
	return int32(i), ok
}

// readiness converts a service's ready check: {tcp: PORT} or {command: [...]}, with an
// optional timeout.
func (v *validator) readiness(n *yaml.Node, rp string) *Readiness {
	f, ok := v.fields(n, rp, readinessFields)
	if !ok {
		return nil
	}
	r := &Readiness{Timeout: DefaultReadyTimeout}
	switch cn, tn := f["command"], f["tcp"]; {
	case cn != nil && tn != nil:
		v.add(n, rp, "must set either command or tcp, not both")
	case cn != nil:
		r.Command = v.argv(cn, rp+".command")
	case tn != nil:
		r.TCP, _ = v.port(tn, rp+".tcp")
	default:
		v.add(n, rp, "must set command or tcp")
	}
	if tn := f["timeout"]; tn != nil {
		if d := v.timeout(tn, rp+".timeout"); d > maxReadyTimeout {
			v.add(tn, rp+".timeout", "must be at most %s, got %s", maxReadyTimeout, d)
		} else if d > 0 {
			r.Timeout = d
		}
	}
	return r
}

// ServiceContainerName is the name of the container that runs a step's service.
func ServiceContainerName(name string) string { return v1alpha1.ServiceContainerPrefix + name }

// String names a readiness check for messages: "tcp 5432" or "command pg_isready".
func (r *Readiness) String() string {
	if r == nil {
		return "none"
	}
	if r.TCP > 0 {
		return "tcp " + strconv.Itoa(int(r.TCP))
	}
	return "command " + strings.Join(r.Command, " ")
}
