package cast

import (
	"bytes"
	"context"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmux/vmux/internal/testutil"
)

func TestHTMLStructure(t *testing.T) {
	b, err := synthetic(t, 2).HTML()
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for class, want := range map[string]int{`class="cdf"`: 2, `class="ratios"`: 2, `class="timeline"`: 6, `class="ci"`: 12, `class="bar"`: 12} {
		if n := strings.Count(s, class); n != want {
			t.Errorf("%s: %d in the page, want %d", class, n, want)
		}
	}
}

// TestHTMLInChromium renders the report page in headless Chromium and
// checks from the screenshot that the plots are drawn: each mode's CDF
// colour, the ratio bars and the timeline lines are on the page.
func TestHTMLInChromium(t *testing.T) {
	chromium := testutil.MustHaveCommand(t, "chromium")
	b, err := synthetic(t, 2).HTML()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if err := os.WriteFile(page, b, 0o600); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--hide-scrollbars", "--window-size=1280,4000", "--screenshot="+shot, "file://"+page)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	f, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	count := func(want string) int {
		c := parseHex(want)
		n := 0
		bd := img.Bounds()
		for y := bd.Min.Y; y < bd.Max.Y; y++ {
			for x := bd.Min.X; x < bd.Max.X; x++ {
				if near8(img.At(x, y), c) {
					n++
				}
			}
		}
		return n
	}
	for name, col := range map[string]string{"scaled": scaledColour[0], "naive": naiveColour[0], "host idle line": "#2ca02c", "throttled line": "#9467bd"} {
		// A 2-pixel line across a 470-pixel plot is ~900 pixels; the legend
		// alone is ~70.
		if n := count(col); n < 500 {
			t.Errorf("%s (%s): %d pixels on the page, want the plots drawn (>= 500)", name, col, n)
		}
	}
}

func parseHex(s string) color.RGBA {
	var c color.RGBA
	for i, p := range []*uint8{&c.R, &c.G, &c.B} {
		v := s[1+2*i : 3+2*i]
		var x uint8
		for _, ch := range v {
			x <<= 4
			switch {
			case ch >= '0' && ch <= '9':
				x |= uint8(ch - '0')
			default:
				x |= uint8(ch-'a') + 10
			}
		}
		*p = x
	}
	return c
}

func near8(c color.Color, want color.RGBA) bool {
	r, g, b, _ := c.RGBA()
	d := func(a uint32, b uint8) int {
		x := int(a>>8) - int(b)
		if x < 0 {
			return -x
		}
		return x
	}
	return d(r, want.R) <= 12 && d(g, want.G) <= 12 && d(b, want.B) <= 12
}
