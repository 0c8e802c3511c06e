// Package servebin runs the real `privguard serve` binary for the benchmark programs:
// started on a configuration in a temporary directory, its listeners' addresses read from
// what it prints, its admin token read from the data directory; and the helpers the
// programs share (medians, the machine's CPU model).
package servebin

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Serve is a running `privguard serve`.
type Serve struct {
	// Admin, Sidecar and Portal are the base URLs of its listeners ("" if not configured).
	Admin, Sidecar, Portal string
	// Token is the admin bearer token serve created.
	Token string
	// Client makes the API calls (default http.DefaultClient).
	Client *http.Client
	cmd    *exec.Cmd
}

// Start runs bin with config (YAML) in dir, its data directory dir/data (config should
// name it as data_dir: DataDir(dir)), and waits until the admin API is up.
func Start(bin, dir, config string) (*Serve, error) {
	path := filepath.Join(dir, "privguard.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Serve{cmd: cmd, Client: http.DefaultClient}
	addr := regexp.MustCompile(`http://[0-9.:]+`)
	sc := bufio.NewScanner(out)
	for s.Admin == "" && sc.Scan() {
		switch line := sc.Text(); {
		case strings.Contains(line, "sidecar on"):
			s.Sidecar = addr.FindString(line)
		case strings.Contains(line, "privacy centre on"):
			s.Portal = addr.FindString(line)
		case strings.Contains(line, "admin API on"):
			s.Admin = addr.FindString(line)
		}
	}
	go io.Copy(io.Discard, out)
	if s.Admin == "" {
		s.Stop()
		return nil, fmt.Errorf("serve did not print the admin API's address (is the configuration valid? run %s serve --config %s)", bin, path)
	}
	token, err := os.ReadFile(filepath.Join(DataDir(dir), "admin.token"))
	if err != nil {
		s.Stop()
		return nil, err
	}
	s.Token = strings.TrimSpace(string(token))
	return s, nil
}

// DataDir is the data directory of a serve started in dir.
func DataDir(dir string) string { return filepath.Join(dir, "data") }

// Stop interrupts serve and waits for it.
func (s *Serve) Stop() {
	s.cmd.Process.Signal(os.Interrupt)
	s.cmd.Wait()
}

// API calls the admin API with the admin token and returns the status and body.
func (s *Serve) API(method, path, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, s.Admin+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// MarketingNotice is a notice covering the marketing purposes, to register before grants.
const MarketingNotice = `{"id":"marketing","version":1,"language":"zh-CN","text":"我们将向您发送促销短信。","purposes":["marketing"],
	"controller":{"name":"Bench Retail Ltd","contact":"privacy@bench.example","dpo":"dpo@bench.example"},"retention":"13 months","rights_channels":["https://bench.example/privacy"]}`

// Median returns the median of v.
func Median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// Ms is d in milliseconds.
func Ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// CPUModel is the machine's CPU model from /proc/cpuinfo.
func CPUModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range bytes.Split(b, []byte("\n")) {
		if k, v, ok := strings.Cut(string(line), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
