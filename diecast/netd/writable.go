package netd

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// writableEnv carries UpOptions.Writable to the daemon (a JSON list).
const writableEnv = "VMUX_NET_WRITABLE"

// writableEnviron checks UpOptions.Writable (clean absolute paths of
// existing directories) and encodes it for the daemon's environment.
func writableEnviron(dirs []string) ([]string, error) {
	if len(dirs) == 0 {
		return nil, nil
	}
	for _, d := range dirs {
		if !filepath.IsAbs(d) || filepath.Clean(d) != d || d == "/" {
			return nil, fmt.Errorf("check writable %q: %w: give a clean absolute path other than /", d, ErrBadOption)
		}
		st, err := os.Stat(d)
		if err != nil {
			return nil, fmt.Errorf("check writable: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("check writable %s: %w: not a directory", d, ErrBadOption)
		}
	}
	b, _ := json.Marshal(dirs)
	return []string{writableEnv + "=" + string(b)}, nil
}

// takeWritable is the daemon's side: the directories every node may
// write, removed from the environment (node inits inherit it otherwise).
func takeWritable() []string {
	var dirs []string
	_ = json.Unmarshal([]byte(os.Getenv(writableEnv)), &dirs)
	os.Unsetenv(writableEnv)
	return dirs
}
