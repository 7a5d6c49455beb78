package pipeline

// Footprint estimates the bytes a parsed pipeline holds in memory: the text of its
// steps (names, images, commands, variables, dependencies, services) plus a fixed cost
// per step. A matrix makes a file's steps several times larger than the file, so a
// cache that bounds parsed pipelines counts this, not the file's size.
func (p *Pipeline) Footprint() int64 {
	const perStep = 512 // the Step struct, its slices' headers, its graph entries
	n := int64(len(p.Name) + len(p.Image) + envBytes(p.Env))
	for i := range len(p.Steps) + len(p.Finally) {
		s := p.Step(i)
		n += perStep + int64(len(s.Name)+len(s.Image)+envBytes(s.Env)+textBytes(s.Commands)+textBytes(s.DependsOn))
		for _, c := range s.Combination {
			n += int64(len(c.Axis) + len(c.Value))
		}
		for _, svc := range s.Services {
			n += int64(len(svc.Name) + len(svc.Image) + envBytes(svc.Env) + textBytes(svc.Command) + textBytes(svc.Args))
			if svc.Ready != nil {
				n += int64(textBytes(svc.Ready.Command))
			}
		}
	}
	return n
}

func envBytes(env []EnvVar) int {
	n := 0
	for _, e := range env {
		n += len(e.Name) + len(e.Value)
	}
	return n
}

func textBytes(list []string) int {
	n := 0
	for _, s := range list {
		n += len(s)
	}
	return n
}
