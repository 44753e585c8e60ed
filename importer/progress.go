package importer

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress shows how far the import is: resources done, their rate, and
// the share of the input bytes done with the time left at that pace. On a
// terminal it redraws one line; elsewhere it writes a plain line every
// period.
type progress struct {
	r     *run
	total int64
	done  atomic.Int64 // input bytes done
	drawn bool         // a bar is on the screen (guarded by r.mu)
	stopc chan struct{}
	wg    sync.WaitGroup
}

func newProgress(r *run, total int64) *progress {
	return &progress{r: r, total: total, stopc: make(chan struct{})}
}

func (p *progress) add(n int64) {
	if n > 0 {
		p.done.Add(n)
	}
}

func (p *progress) start() {
	every := p.r.opts.Every
	if every < 0 {
		return
	}
	if every <= 0 {
		every = 10 * time.Second
		if p.r.opts.Terminal {
			every = 200 * time.Millisecond
		}
	}
	p.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stopc:
				return
			case <-t.C:
				p.show()
			}
		}
	})
}

// stop shows the final state and ends the display.
func (p *progress) stop() {
	close(p.stopc)
	p.wg.Wait()
	if p.r.opts.Every < 0 {
		return
	}
	p.show()
	p.r.mu.Lock()
	defer p.r.mu.Unlock()
	if p.drawn {
		fmt.Fprintln(p.r.opts.Log)
		p.drawn = false
	}
}

// clear removes the bar before another line is written; the caller holds
// r.mu.
func (p *progress) clear() {
	if p.drawn {
		fmt.Fprint(p.r.opts.Log, "\r\033[K")
		p.drawn = false
	}
}

func (p *progress) show() {
	r := p.r
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sum
	n := int64(s.Written() + s.Unchanged + s.Failed)
	elapsed := r.opts.Now().Sub(r.start)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(n) / elapsed.Seconds()
	}
	done := min(p.done.Load(), p.total)
	frac := 1.0
	if p.total > 0 {
		frac = float64(done) / float64(p.total)
	}
	eta := "?"
	if frac > 0 && frac < 1 {
		eta = fmtDuration(time.Duration(float64(elapsed) * (1 - frac) / frac))
	} else if frac >= 1 {
		eta = "0s"
	}
	text := fmt.Sprintf("%s resources, %s/s, %d%%, ETA %s", group(n), group(int64(rate+0.5)), int(frac*100), eta)
	if s.Failed > 0 {
		text += fmt.Sprintf(", %s failed", group(int64(s.Failed)))
	}
	if !r.opts.Terminal {
		fmt.Fprintf(r.opts.Log, "progress: %s\n", text)
		return
	}
	const width = 30
	fill := int(frac * width)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	if fill > 0 && fill < width {
		bar = bar[:fill-1] + ">" + bar[fill:]
	}
	fmt.Fprintf(r.opts.Log, "\r[%s] %s\033[K", bar, text)
	p.drawn = true
}

func fmtDuration(d time.Duration) string {
	if d < time.Hour {
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// group writes n with thousands separators: 17,582.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
