package web

import (
	"bytes"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
)

// page is what every template gets: the layout's parts and the screen's
// own Data.
type page struct {
	Title  string
	Nav    string // the main navigation entry that is current
	Tab    string // the chart tab that is current
	Banner *banner
	Flash  string
	Data   any

	User        *user
	CSRF        string
	IdleSeconds int
}

// parseTemplates parses each screen with the layout and the shared
// partials (files starting with "_").
func (a *App) parseTemplates() error {
	funcs := template.FuncMap{
		"asset":    a.asset,
		"date":     a.showDate,
		"datetime": a.showDateTime,
		// dict passes several values to a template: dict "A" 1 "B" 2.
		"dict": func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				k, _ := kv[i].(string)
				m[k] = kv[i+1]
			}
			return m
		},
		"has": func(l []string, s string) bool { return slices.Contains(l, s) },
		"path": func(parts ...string) string {
			// Ids are checked to be FHIR ids before they get here; escape
			// anyway.
			var b strings.Builder
			b.WriteString(Prefix)
			for _, p := range parts {
				b.WriteByte('/')
				b.WriteString(pathEscape(p))
			}
			return b.String()
		},
	}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return err
	}
	var shared, screens []string
	for _, n := range names {
		if strings.HasPrefix(path.Base(n), "_") {
			shared = append(shared, n)
		} else {
			screens = append(screens, n)
		}
	}
	a.pages = map[string]*template.Template{}
	for _, s := range screens {
		t, err := template.New(path.Base(s)).Funcs(funcs).ParseFS(templateFiles, append(append([]string{}, shared...), s)...)
		if err != nil {
			return err
		}
		a.pages[strings.TrimSuffix(path.Base(s), ".html")] = t
	}
	return nil
}

// render writes the screen name with p. Rendering goes to a buffer
// first, so a template error becomes an error page, not half a page.
func (a *App) render(w http.ResponseWriter, r *http.Request, u *user, name string, p *page, data any) {
	t := a.pages[name]
	p.Data = data
	if u != nil {
		p.User = u
		p.CSRF = u.csrf
		p.IdleSeconds = int(a.opts.IdleTimeout.Seconds())
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		a.log.Error("web: template", "page", name, "err", err)
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

func pathEscape(s string) string {
	return strings.ReplaceAll(template.URLQueryEscaper(s), "+", "%20")
}
