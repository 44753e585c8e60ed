package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hale-ehr/hale/demo"
	"github.com/hale-ehr/hale/sqlite"
	"github.com/hale-ehr/hale/web"
)

// galleryCommand implements `hale gallery --out DIR`: every screen of
// the clinician app drawn with fixture data (the demo patients and a few
// more records) to PNG files, for review (web.Gallery). It runs Hale
// in-process on a throwaway SQLite database in a temporary folder and
// draws the pages with chromium, which must be installed.
func galleryCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hale gallery", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "the folder to write the screens to (created if needed)")
	htmlOnly := fs.Bool("html", false, "write the HTML pages only (no chromium needed)")
	width := fs.Int("width", 1366, "browser window width in pixels")
	height := fs.Int("height", 900, "browser window height in pixels (the least height of a PNG)")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: hale gallery --out DIR [--html] [--width W --height H]\n\n"+
			"Draws every screen of the clinician app with the demo patients to DIR/NN-screen.png (and .html).\n"+
			"Needs chromium (apt-get install chromium, or HALE_CHROMIUM=/path/to/chrome).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("gallery: --out DIR is required")
	}
	if *width < 320 || *height < 320 {
		return errors.New("gallery: --width and --height must be at least 320")
	}
	browser := ""
	if !*htmlOnly {
		var err error
		if browser, err = web.FindChromium(getenv); err != nil {
			return fmt.Errorf("gallery needs chromium to draw the screens: %w (or use --html for the HTML pages only)", err)
		}
	}
	tmp, err := os.MkdirTemp("", "hale-gallery-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	store, err := sqlite.Open(ctx, filepath.Join(tmp, "hale.db"), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		return err
	}
	defer store.Close()
	bundles, err := demo.Bundles()
	if err != nil {
		return err
	}
	var data [][]byte
	for _, b := range bundles {
		data = append(data, b.Data)
	}
	start := time.Now()
	files, err := web.Gallery(ctx, web.GalleryOptions{Store: store, Bundles: data, Dir: *out, Chromium: browser, Width: *width, Height: *height})
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintln(stdout, f)
	}
	fmt.Fprintf(stdout, "%d screens in %s (%s)\n", len(files), *out, time.Since(start).Round(100*time.Millisecond))
	return nil
}
