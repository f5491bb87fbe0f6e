package main

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"time"
)

// series is one set of latencies in a histogram.
type series struct {
	name   string
	color  string
	values []time.Duration
}

// writeHistogramSVG draws the series as overlaid histograms over
// log-spaced latency bins. It is written by hand to keep the CLI free of
// plotting dependencies.
func writeHistogramSVG(out io.Writer, title string, ss []series) error {
	const (
		width, height         = 900, 480
		left, right, top, bot = 70, 20, 50, 60
		bins                  = 48
	)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, v := range s.values {
			if v <= 0 {
				continue
			}
			x := math.Log10(float64(v))
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
	}
	if math.IsInf(lo, 1) {
		lo, hi = 3, 6 // 1µs..1ms, an empty chart
	}
	lo, hi = math.Floor(lo*4)/4, math.Ceil(hi*4)/4
	if hi <= lo {
		hi = lo + 0.25
	}
	counts := make([][]int, len(ss))
	maxCount := 1
	for i, s := range ss {
		counts[i] = make([]int, bins)
		for _, v := range s.values {
			if v <= 0 {
				continue
			}
			b := int((math.Log10(float64(v)) - lo) / (hi - lo) * bins)
			b = max(0, min(b, bins-1))
			counts[i][b]++
			maxCount = max(maxCount, counts[i][b])
		}
	}
	pw, ph := float64(width-left-right), float64(height-top-bot)
	xOf := func(logv float64) float64 { return left + (logv-lo)/(hi-lo)*pw }
	yOf := func(c int) float64 { return top + ph - float64(c)/float64(maxCount)*ph }

	w := bufio.NewWriter(out)
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(w, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(w, `<text x="%d" y="24" font-size="16" text-anchor="middle">%s</text>`+"\n", width/2, html.EscapeString(title))
	// Axes.
	fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", left, top+ph, left+pw, top+ph)
	fmt.Fprintf(w, `<line x1="%d" y1="%d" x2="%d" y2="%.1f" stroke="black"/>`+"\n", left, top, left, top+ph)
	// X ticks at 1, 2, 5 × powers of ten within range.
	for e := math.Floor(lo); e <= hi; e++ {
		for _, m := range []float64{1, 2, 5} {
			lv := e + math.Log10(m)
			if lv < lo-1e-9 || lv > hi+1e-9 {
				continue
			}
			x := xOf(lv)
			fmt.Fprintf(w, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%.1f" stroke="#ccc"/>`+"\n", x, top, x, top+ph)
			fmt.Fprintf(w, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, top+ph+16, html.EscapeString(fmtDur(time.Duration(math.Pow(10, lv)+0.5))))
		}
	}
	fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">latency (log scale)</text>`+"\n", left+pw/2, height-15)
	// Y ticks: 5 steps.
	for i := 0; i <= 5; i++ {
		c := maxCount * i / 5
		y := yOf(c)
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%d</text>`+"\n", left-6, y+4, c)
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", left, y, left+pw, y)
	}
	fmt.Fprintf(w, `<text x="18" y="%.1f" text-anchor="middle" transform="rotate(-90 18 %.1f)">samples</text>`+"\n", top+ph/2, top+ph/2)
	// Bars, translucent so overlapping series stay visible.
	bw := pw / bins
	for i, s := range ss {
		for b, c := range counts[i] {
			if c == 0 {
				continue
			}
			x := left + float64(b)*bw
			fmt.Fprintf(w, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.55"/>`+"\n", x, yOf(c), bw, top+ph-yOf(c), s.color)
		}
	}
	// Legend with p50/p99.
	for i, s := range ss {
		y := top + 8 + i*18
		sm := summarize(s.values)
		fmt.Fprintf(w, `<rect x="%.1f" y="%d" width="12" height="12" fill="%s" fill-opacity="0.7"/>`+"\n", left+pw-330, y, s.color)
		fmt.Fprintf(w, `<text x="%.1f" y="%d">%s (p50 %s, p99 %s)</text>`+"\n", left+pw-312, y+10,
			html.EscapeString(s.name), fmtDur(sm.pct(50)), fmtDur(sm.pct(99)))
	}
	fmt.Fprintln(w, `</svg>`)
	return w.Flush()
}
