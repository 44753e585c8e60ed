package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/hale-ehr/hale/postgres/pgtest"
)

// crashLoad runs writers against p until it is killed, then restarts it
// with restart and checks that every acknowledged write is there and that
// every transaction is there whole or not at all.
func crashLoad(t *testing.T, p *proc, restart func() *proc) {
	type txKey struct{ worker, n int }
	var (
		mu        sync.Mutex
		createdID = map[string]string{} // identifier value → id, acknowledged creates
		updated   = map[string]string{} // id → versionId acknowledged by an update
		txSent    []string              // every transaction key sent
		txAcked   = map[string]bool{}
	)
	client := &http.Client{Timeout: 20 * time.Second, Transport: authTransport{}}
	post := func(path string, body []byte, hdr ...string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", p.base+path, bytes.NewReader(body))
		if len(hdr) == 2 {
			req.Method = hdr[0]
			req.URL, _ = url.Parse(p.base + hdr[1])
		}
		req.Header.Set("Content-Type", "application/fhir+json")
		r, err := client.Do(req)
		if err != nil {
			return 0, nil // killed mid-request: outcome unknown
		}
		defer r.Body.Close()
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return 0, nil
		}
		var m map[string]any
		json.Unmarshal(data, &m)
		return r.StatusCode, m
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				switch n % 3 {
				case 0, 1: // create, then update it
					key := fmt.Sprintf("c-%d-%d", w, n)
					body := fmt.Sprintf(`{"resourceType":"Patient","identifier":[{"system":"urn:crash","value":%q}],"name":[{"family":"Crash","given":["W%d"]}]}`, key, w)
					code, m := post("/Patient", []byte(body))
					if code != 201 {
						continue
					}
					id, _ := m["id"].(string)
					mu.Lock()
					createdID[key] = id
					mu.Unlock()
					upd := fmt.Sprintf(`{"resourceType":"Patient","id":%q,"identifier":[{"system":"urn:crash","value":%q}],"active":true}`, id, key)
					if code, m := post("", []byte(upd), "PUT", "/Patient/"+id); code == 200 {
						mu.Lock()
						updated[id] = fmt.Sprint(m["meta"].(map[string]any)["versionId"])
						mu.Unlock()
					}
				case 2: // a transaction of one patient and five observations
					key := fmt.Sprintf("t-%d-%d", w, n)
					var entries []string
					entries = append(entries, fmt.Sprintf(`{"fullUrl":"urn:uuid:00000000-0000-0000-0000-%012d","resource":{"resourceType":"Patient","identifier":[{"system":"urn:crash","value":%q}]},"request":{"method":"POST","url":"Patient"}}`, w*100000+n, key))
					for i := 0; i < 5; i++ {
						entries = append(entries, fmt.Sprintf(`{"resource":{"resourceType":"Observation","status":"final","identifier":[{"system":"urn:crash","value":%q}],"code":{"text":"x"},"subject":{"reference":"urn:uuid:00000000-0000-0000-0000-%012d"},"valueQuantity":{"value":%d,"unit":"mg"}},"request":{"method":"POST","url":"Observation"}}`, key, w*100000+n, i))
					}
					bundle := `{"resourceType":"Bundle","type":"transaction","entry":[` + join(entries) + `]}`
					mu.Lock()
					txSent = append(txSent, key)
					mu.Unlock()
					if code, _ := post("", []byte(bundle)); code == 200 {
						mu.Lock()
						txAcked[key] = true
						mu.Unlock()
					}
				}
			}
		}(w)
	}
	time.Sleep(3 * time.Second)
	p.kill() // SIGKILL while the writers are busy
	close(stop)
	wg.Wait()

	if len(createdID) < 20 || len(txAcked) < 5 {
		t.Fatalf("load too small to mean anything: %d creates, %d transactions acknowledged", len(createdID), len(txAcked))
	}
	p = restart()
	for key, id := range createdID {
		code, body := get(t, p.base+"/Patient/"+id)
		if code != 200 {
			t.Errorf("acknowledged create %s (Patient/%s) lost: %d", key, id, code)
			continue
		}
		var m map[string]any
		json.Unmarshal(body, &m)
		if want, ok := updated[id]; ok && fmt.Sprint(m["meta"].(map[string]any)["versionId"]) != want {
			t.Errorf("acknowledged update of Patient/%s to version %s lost", id, want)
		}
	}
	whole, none := 0, 0
	for _, key := range txSent {
		q := "identifier=" + url.QueryEscape("urn:crash|"+key)
		obs := total(t, p.base+"/Observation?"+q)
		pat := total(t, p.base+"/Patient?"+q)
		switch {
		case obs == 5 && pat == 1:
			whole++
		case obs == 0 && pat == 0:
			none++
			if txAcked[key] {
				t.Errorf("acknowledged transaction %s lost", key)
			}
		default:
			t.Errorf("transaction %s half applied: %d observations, %d patients", key, obs, pat)
		}
	}
	t.Logf("after SIGKILL: %d acknowledged creates and %d updates all present; transactions: %d whole, %d absent (unacknowledged), 0 partial",
		len(createdID), len(updated), whole, none)
}

func total(t *testing.T, u string) int {
	code, body := get(t, u)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", u, code, body)
	}
	var b struct{ Total int }
	json.Unmarshal(body, &b)
	return b.Total
}

func join(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(x)
	}
	return b.String()
}

// The crash tests measure durability, not the rate limit: the load and
// the check after the restart (a search per acknowledged write) may pass
// the default 6,000 requests a minute on a fast machine.

func TestCrashSQLite(t *testing.T) {
	data := t.TempDir()
	args := []string{"--data", data, "--no-demo", "--rate-limit", "0"}
	p := start(t, args...)
	crashLoad(t, p, func() *proc { return start(t, args...) })
}

func TestCrashPostgres(t *testing.T) {
	url := pgtest.Schema(t) // a fresh schema; skips (or fails with CI=true) without PostgreSQL
	args := []string{"--database", url, "--no-demo", "--rate-limit", "0"}
	p := start(t, args...)
	crashLoad(t, p, func() *proc { return start(t, args...) })
}
