package importer

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hale-ehr/hale/fhir"
)

// format is how a file is read, from its name.
type format int

const (
	formatUnknown format = iota
	formatJSON           // .json: one resource or one Bundle
	formatNDJSON         // .ndjson, .jsonl: one resource per line (Bulk Data)
	formatZip            // .zip: the members, by their own names
)

// formatOf returns a file's format and whether it is gzip-compressed.
func formatOf(name string) (format, bool) {
	n := strings.ToLower(name)
	gz := strings.HasSuffix(n, ".gz")
	n = strings.TrimSuffix(n, ".gz")
	switch {
	case strings.HasSuffix(n, ".ndjson"), strings.HasSuffix(n, ".jsonl"):
		return formatNDJSON, gz
	case strings.HasSuffix(n, ".json"):
		return formatJSON, gz
	case strings.HasSuffix(n, ".zip") && !gz:
		return formatZip, false
	}
	return formatUnknown, gz
}

// source is one input file. Named says it was named on the command line:
// a file found in a folder or archive that is not FHIR data is skipped,
// a named one is an error.
type source struct {
	path  string
	size  int64
	named bool
}

// plan lists the files to read: each path, folders walked in name order
// (hidden files and folders left out). Files of other kinds in folders are
// not listed; their number is returned.
func plan(paths []string) (srcs []source, total int64, err error) {
	if len(paths) == 0 {
		return nil, 0, fmt.Errorf("nothing to import: name files or folders")
	}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, 0, err
		}
		if !st.IsDir() {
			srcs = append(srcs, source{path: p, size: st.Size(), named: true})
			total += st.Size()
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if path != p && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.IsDir() || !d.Type().IsRegular() {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			srcs = append(srcs, source{path: path, size: info.Size()})
			total += info.Size()
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
	}
	return srcs, total, nil
}

// job is a piece of input for a decoder: a whole JSON file, or a chunk of
// NDJSON lines.
type job struct {
	file      string
	named     bool
	json      []byte   // a JSON file
	lines     [][]byte // NDJSON lines, the first at line firstLine
	firstLine int
	bytes     int64 // input bytes it stands for
}

// Lines of NDJSON per job: large enough to amortise, small enough that
// one big file keeps every decoder busy.
const (
	chunkLines = 256
	chunkBytes = 4 << 20
)

// read walks the sources and sends jobs; problems with whole files are
// reported and counted here.
func (r *run) read(ctx context.Context, srcs []source, jobs chan<- job) {
	for _, s := range srcs {
		if ctx.Err() != nil {
			return
		}
		f, err := os.Open(s.path)
		if err != nil {
			r.fileFailed(s.path, s.size, err.Error())
			continue
		}
		fm, gz := formatOf(s.path)
		if fm == formatZip {
			r.readZip(ctx, s, f, jobs)
			f.Close()
			continue
		}
		cr := &countingReader{r: f}
		r.readStream(ctx, s.path, s.named, fm, gz, cr, s.size, func() int64 { return cr.n }, jobs)
		f.Close()
	}
}

// readZip reads the members of a zip archive as if they were files in a
// folder (nested archives included). Progress is credited in compressed
// bytes, in proportion to what has been read of each member.
func (r *run) readZip(ctx context.Context, s source, f *os.File, jobs chan<- job) {
	zr, err := zip.NewReader(f, s.size)
	if err != nil {
		r.fileFailed(s.path, s.size, "not a readable zip archive: "+err.Error())
		return
	}
	r.readArchive(ctx, s.path, zr, s.size, jobs)
}

func (r *run) readArchive(ctx context.Context, name string, zr *zip.Reader, size int64, jobs chan<- job) {
	members := append([]*zip.File(nil), zr.File...)
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	var credited int64
	for _, m := range members {
		if ctx.Err() != nil {
			return
		}
		base := filepath.Base(m.Name)
		if m.FileInfo().IsDir() || strings.HasPrefix(base, ".") || strings.HasPrefix(m.Name, "__MACOSX/") {
			continue
		}
		path := name + ":" + m.Name
		csize := int64(m.CompressedSize64)
		credited += csize
		fm, gz := formatOf(m.Name)
		if fm == formatUnknown {
			r.fileSkipped(path, csize)
			continue
		}
		rc, err := m.Open()
		if err != nil {
			r.fileFailed(path, csize, err.Error())
			continue
		}
		if fm == formatZip {
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				r.fileFailed(path, csize, err.Error())
				continue
			}
			inner, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			if err != nil {
				r.fileFailed(path, csize, "not a readable zip archive: "+err.Error())
				continue
			}
			r.readArchive(ctx, path, inner, csize, jobs)
			continue
		}
		cr := &countingReader{r: rc}
		usize := max(int64(m.UncompressedSize64), 1)
		r.readStream(ctx, path, false, fm, gz, cr, csize, func() int64 { return min(cr.n*csize/usize, csize) }, jobs)
		rc.Close()
	}
	// Headers and directory entries count too, so the total comes out.
	r.progress.add(size - credited)
}

// readStream reads one file (or archive member) of format fm from rd and
// sends its jobs. size is what the whole file credits to the progress,
// consumed how much of it has been read so far.
func (r *run) readStream(ctx context.Context, name string, named bool, fm format, gz bool, rd io.Reader, size int64, consumed func() int64, jobs chan<- job) {
	if fm == formatUnknown {
		if named {
			r.fileFailed(name, size, "unknown format: expected .json, .ndjson, .ndjson.gz, .zip or a folder")
		} else {
			r.fileSkipped(name, size)
		}
		return
	}
	if gz {
		zr, err := gzip.NewReader(rd)
		if err != nil {
			r.fileFailed(name, size, "not gzip data: "+err.Error())
			return
		}
		defer zr.Close()
		rd = zr
	}
	r.fileRead()
	if fm == formatJSON {
		data, err := io.ReadAll(rd)
		if err != nil {
			r.fileFailed(name, size, err.Error())
			return
		}
		jobs <- job{file: name, named: named, json: data, bytes: size}
		return
	}
	br := bufio.NewReaderSize(rd, 1<<20)
	var credited int64
	j := job{file: name, named: named, firstLine: 1}
	chunk := 0
	send := func(next int) {
		c := consumed()
		j.bytes, credited = c-credited, c
		jobs <- j
		j = job{file: name, named: named, firstLine: next}
		chunk = 0
	}
	line := 0
	for ctx.Err() == nil {
		b, err := br.ReadBytes('\n')
		if len(b) > 0 {
			line++
			if line == 1 && !named && !fhirLine(b) {
				// A log or manifest beside the data (Bulk Data clients
				// write log.ndjson): not FHIR, so not an error.
				r.fileSkippedRead(name, size)
				return
			}
			j.lines = append(j.lines, b)
			chunk += len(b)
			if len(j.lines) == chunkLines || chunk >= chunkBytes {
				send(line + 1)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			r.fileFailed(name, 0, fmt.Sprintf("line %d: %v", line+1, err))
			break
		}
	}
	send(line + 1)
	r.progress.add(size - credited)
}

// fhirLine reports whether an NDJSON line holds a FHIR resource, or at
// least is not JSON of another kind; a malformed line counts as FHIR so
// that it is reported.
func fhirLine(b []byte) bool {
	m, err := fhir.Decode(bytes.TrimSpace(b))
	if err != nil {
		return true
	}
	_, ok := m["resourceType"]
	return ok
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
