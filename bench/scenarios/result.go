package scenarios

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Target is one number judged against its goal.
type Target struct {
	What     string `json:"what"`
	Measured string `json:"measured"`
	Goal     string `json:"goal"`
	Verdict  string `json:"verdict"` // "met", "missed" or "reference"
}

// Server is one server process's numbers in a scenario.
type Server struct {
	Label     string      `json:"label"`
	Idle      ServerStats `json:"idle"`   // before any connection, after a GC
	Loaded    ServerStats `json:"loaded"` // with every session up, after a GC
	End       ServerStats `json:"end"`    // when loadgen finished (no GC)
	PeakSess  int64       `json:"peak_sessions"`
	PeakFDs   int         `json:"peak_fds"`
	CPUCores  float64     `json:"cpu_cores"` // CPU seconds over the load / its wall time
	Broadcast []int64     `json:"broadcast_us,omitempty"`
}

// Result is what one scenario measured; the loadgen reports it refers to
// sit next to it in OutDir.
type Result struct {
	Name     string            `json:"name"`
	Title    string            `json:"title"`
	Quick    bool              `json:"quick"`
	Started  time.Time         `json:"started"`
	Seconds  float64           `json:"seconds"`
	Mode     string            `json:"mode"`     // how shares are made
	Reports  map[string]string `json:"reports"`  // label ("engine", "baseline") → loadgen JSON file in OutDir
	Servers  []Server          `json:"servers"`  // per server process
	Numbers  []string          `json:"numbers"`  // key numbers, one line each
	Targets  []Target          `json:"targets"`  // judged numbers
	Commands []string          `json:"commands"` // equivalent command lines
	Notes    []string          `json:"notes,omitempty"`
	Error    string            `json:"error,omitempty"`
}

func (res *Result) number(format string, args ...any) {
	res.Numbers = append(res.Numbers, fmt.Sprintf(format, args...))
}

func (res *Result) target(what, measured, goal string, pass bool) {
	v := "missed"
	if pass {
		v = "met"
	}
	res.Targets = append(res.Targets, Target{what, measured, goal, v})
}

func (res *Result) reference(what, measured, goal string) {
	res.Targets = append(res.Targets, Target{what, measured, goal, "reference"})
}

// Text is a short plain-text summary: key numbers, then targets.
func (res *Result) Text() string {
	var b strings.Builder
	size := "full"
	if res.Quick {
		size = "quick"
	}
	fmt.Fprintf(&b, "%s — %s (%s, %.0f s)\n", res.Name, res.Title, size, res.Seconds)
	if res.Mode != "" {
		fmt.Fprintf(&b, "  shares: %s\n", res.Mode)
	}
	if res.Error != "" {
		fmt.Fprintf(&b, "  ERROR: %s\n", res.Error)
	}
	for _, n := range res.Numbers {
		fmt.Fprintf(&b, "  %s\n", n)
	}
	if len(res.Targets) > 0 {
		fmt.Fprintf(&b, "  targets:\n")
		for _, t := range res.Targets {
			fmt.Fprintf(&b, "    [%s] %s: %s (target %s)\n", t.Verdict, t.What, t.Measured, t.Goal)
		}
	}
	for _, n := range res.Notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	labels := make([]string, 0, len(res.Reports))
	for k := range res.Reports {
		labels = append(labels, k)
	}
	slices.Sort(labels)
	for _, k := range labels {
		fmt.Fprintf(&b, "  loadgen report (%s): %s\n", k, res.Reports[k])
	}
	return b.String()
}

// ResultSuffix ends the name of a Result's JSON file in OutDir.
const ResultSuffix = ".result.json"

func (res *Result) write(dir string) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, res.Name+ResultSuffix), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, res.Name+".txt"), []byte(res.Text()), 0o644)
}

// Load reads the Results in dir (the files Run wrote), in the fixed
// scenario order; files of unknown scenarios are ignored.
func Load(dir string) ([]*Result, error) {
	var out []*Result
	for _, name := range Names() {
		b, err := os.ReadFile(filepath.Join(dir, name+ResultSuffix))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			return out, err
		}
		var res Result
		if err := json.Unmarshal(b, &res); err != nil {
			return out, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, &res)
	}
	return out, nil
}

// LoadFile reads one Result file (a recorded run kept outside OutDir).
func LoadFile(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &res, nil
}

// Owned reports whether file (a base name in OutDir) is one of the files
// a Result refers to or is, so a caller listing OutDir can skip it.
func Owned(results []*Result, file string) bool {
	for _, r := range results {
		if file == r.Name+ResultSuffix || file == r.Name+".txt" {
			return true
		}
		for _, f := range r.Reports {
			if f == file {
				return true
			}
		}
	}
	return false
}
