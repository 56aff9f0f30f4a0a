package report

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// errPoints are points with Wilson intervals as asymmetric y errors.
type errPoints struct {
	plotter.XYs
	low, high []float64
}

// YError implements plotter.YErrorer.
func (e errPoints) YError(i int) (float64, float64) {
	return e.XYs[i].Y - e.low[i], e.high[i] - e.XYs[i].Y
}

// plot draws accuracy (with 95% intervals) against x, one line per
// strategy, and saves it; the format follows path's extension.
func (r *Report) plot(path, xLabel string, x func(Row) float64) error {
	p := plot.New()
	title := "accuracy"
	if r.Manifest != nil {
		title = svgText(r.Manifest.Config.Dataset) + ": accuracy at matched compute"
	}
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = "accuracy (95% Wilson interval)"
	p.Y.Min, p.Y.Max = 0, 1
	var yt []plot.Tick
	for i := 0; i <= 10; i++ {
		t := plot.Tick{Value: float64(i) / 10}
		if i%2 == 0 {
			t.Label = fmt.Sprintf("%d%%", i*10)
		}
		yt = append(yt, t)
	}
	p.Y.Tick.Marker = plot.ConstantTicks(yt)
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())

	minX, maxX := math.Inf(1), 0.0
	for _, row := range r.Rows {
		if row.Graded == 0 {
			continue
		}
		v := x(row)
		minX, maxX = math.Min(minX, v), math.Max(maxX, v)
	}
	if minX > 0 && maxX/minX >= 4 {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = logTicks{}
		p.X.Min, p.X.Max = minX/1.25, maxX*1.25
	} else if maxX > 0 {
		pad := math.Max((maxX-minX)*0.08, maxX*0.02)
		p.X.Min, p.X.Max = math.Max(0, minX-pad), maxX+pad
	}
	for i, s := range r.Strategies() {
		var pts errPoints
		for _, row := range r.Rows {
			if row.Strategy != s || row.Graded == 0 {
				continue
			}
			pts.XYs = append(pts.XYs, plotter.XY{X: x(row), Y: row.Accuracy})
			pts.low = append(pts.low, row.Low)
			pts.high = append(pts.high, row.High)
		}
		if len(pts.XYs) == 0 {
			continue
		}
		sort.Sort(byX(pts))
		line, points, err := plotter.NewLinePoints(pts.XYs)
		if err != nil {
			return fmt.Errorf("plot %s: %w", s, err)
		}
		c := plotutil.Color(i)
		line.Color = c
		line.Width = vg.Points(1.5)
		points.Color = c
		points.Shape = plotutil.Shape(i)
		points.Radius = vg.Points(3)
		bars, err := plotter.NewYErrorBars(pts)
		if err != nil {
			return fmt.Errorf("plot %s: %w", s, err)
		}
		bars.Color = c
		bars.CapWidth = vg.Points(4)
		p.Add(line, points, bars)
		p.Legend.Add(svgText(s), line, points)
	}
	p.Legend.ThumbnailWidth = vg.Points(20)
	p.Legend.Padding = vg.Points(2)
	p.Legend.TextStyle.Font.Size = vg.Points(10)
	p.Legend.YOffs = -vg.Points(2)
	c, err := p.WriterTo(7*vg.Inch, 4.5*vg.Inch, strings.TrimPrefix(filepath.Ext(path), "."))
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := writeFile(path, func(w io.Writer) error { _, err := c.WriteTo(w); return err }); err != nil {
		return fmt.Errorf("save plot %s: %w", path, err)
	}
	return nil
}

// svgText is s as a plot may show it: without control characters and
// invalid UTF-8, which SVG (XML 1.0) cannot hold even escaped (a file
// name with an escape character made an SVG no viewer opens).
func svgText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) || r == 0xfffe || r == 0xffff {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// writeFile writes path through a temporary file renamed over it: a write
// the disk cuts short leaves the file as it was (a plot of an earlier
// report), not a truncated image.
func writeFile(path string, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing to remove
	err = write(tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// byX sorts points (and their intervals) by x.
type byX errPoints

func (b byX) Len() int           { return len(b.XYs) }
func (b byX) Less(i, j int) bool { return b.XYs[i].X < b.XYs[j].X }
func (b byX) Swap(i, j int) {
	b.XYs[i], b.XYs[j] = b.XYs[j], b.XYs[i]
	b.low[i], b.low[j] = b.low[j], b.low[i]
	b.high[i], b.high[j] = b.high[j], b.high[i]
}

// logTicks labels 1, 2 and 5 times powers of ten, with unlabeled minor
// ticks at the other multiples.
type logTicks struct{}

// Ticks implements plot.Ticker.
func (logTicks) Ticks(min, max float64) []plot.Tick {
	if min <= 0 || max <= min {
		return nil
	}
	var out []plot.Tick
	for e := math.Floor(math.Log10(min)); e <= math.Ceil(math.Log10(max)); e++ {
		base := math.Pow(10, e)
		for m := 1.0; m <= 9; m++ {
			v := m * base
			if v < min || v > max {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
			}
			out = append(out, t)
		}
	}
	return out
}
