package changes

import "testing"

var decideTests = []struct {
	name    string
	filter  Filter
	changed []string
	all     bool
	run     bool
	why     string
}{
	{
		name:   "all counts as changed",
		filter: Filter{Paths: []string{"src/**"}},
		all:    true,
		run:    true,
		why:    "no base commit to compare with; every file counts as changed",
	},
	{
		name:   "empty change set",
		filter: Filter{},
		run:    false,
		why:    "no files changed",
	},
	{
		name:    "no filter",
		changed: []string{"a.txt"},
		run:     true,
		why:     "a.txt changed",
	},
	{
		name:    "paths match",
		filter:  Filter{Paths: []string{"src/**", "api/**"}},
		changed: []string{"docs/a.md", "api/x.go"},
		run:     true,
		why:     "api/x.go matches paths",
	},
	{
		name:    "paths do not match",
		filter:  Filter{Paths: []string{"src/**"}},
		changed: []string{"docs/a.md", "README.md"},
		run:     false,
		why:     "no changed file matches paths [src/**]",
	},
	{
		name:    "ignorePaths cover everything",
		filter:  Filter{IgnorePaths: []string{"docs/**", "*.md"}},
		changed: []string{"docs/a.md", "README.md"},
		run:     false,
		why:     "every changed file matches ignorePaths [docs/** *.md]",
	},
	{
		name:    "ignorePaths leave a file",
		filter:  Filter{IgnorePaths: []string{"docs/**"}},
		changed: []string{"docs/a.md", "main.go"},
		run:     true,
		why:     "main.go does not match ignorePaths",
	},
	{
		name:    "both, a file survives",
		filter:  Filter{Paths: []string{"src/**"}, IgnorePaths: []string{"**/*_test.go"}},
		changed: []string{"src/a_test.go", "src/a.go"},
		run:     true,
		why:     "src/a.go matches paths",
	},
	{
		name:    "both, every match ignored",
		filter:  Filter{Paths: []string{"src/**"}, IgnorePaths: []string{"**/*_test.go"}},
		changed: []string{"src/a_test.go", "README.md"},
		run:     false,
		why:     "every changed file matching paths [src/**] matches ignorePaths [**/*_test.go]",
	},
	{
		name:    "both, nothing in paths",
		filter:  Filter{Paths: []string{"src/**"}, IgnorePaths: []string{"docs/**"}},
		changed: []string{"docs/a.md"},
		run:     false,
		why:     "no changed file matches paths [src/**]",
	},
}

func TestFilterDecide(t *testing.T) {
	for _, tt := range decideTests {
		t.Run(tt.name, func(t *testing.T) {
			run, why := tt.filter.Decide(tt.changed, tt.all)
			if run != tt.run || why != tt.why {
				t.Errorf("Decide = (%v, %q), want (%v, %q)", run, why, tt.run, tt.why)
			}
		})
	}
}

func TestFilterValidate(t *testing.T) {
	tests := []struct {
		name    string
		filter  Filter
		wantErr bool
	}{
		{"empty", Filter{}, false},
		{"good", Filter{Paths: []string{"src/**"}, IgnorePaths: []string{"**/*.md"}}, false},
		{"bad path", Filter{Paths: []string{"/src"}}, true},
		{"bad ignore", Filter{IgnorePaths: []string{"[x"}}, true},
	}
	for _, tt := range tests {
		if err := tt.filter.Validate(); (err != nil) != tt.wantErr {
			t.Errorf("%s: Validate() = %v, want error %v", tt.name, err, tt.wantErr)
		}
	}
}
