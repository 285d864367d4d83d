// Command sumdb_server is a checksum database for integration tests: it serves the go.sum lines
// of a module tree (laid out like the GOPROXY URL space, see tests/support/module_tree.py) with
// the reference sumdb server from golang.org/x/mod, signed by a key kept in a file.
//
// It is built in GOPATH mode against Debian's golang-golang-x-mod-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o sumdb_server main.go
//
// Records are added on demand, the first time a module version is looked up. With -records-file
// the log survives a restart: earlier records are replayed in their original order, so the
// restarted server's tree heads extend the old ones. With -fork the server first appends junk
// records and then replays, so it signs, with the same key, a history that does not extend the
// one clients have already seen.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/dirhash"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// forkRecords is how many junk records a -fork server puts at the start of its log.
const forkRecords = 3

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	treeDir := flag.String("tree", "", "module tree root in GOPROXY URL layout (required)")
	name := flag.String("name", "sum.test.example", "checksum database name (the key name)")
	keyFile := flag.String("key-file", "",
		"signer key file; generated and written if absent (required)")
	recordsFile := flag.String("records-file", "", "log of records, replayed at start and appended to")
	fork := flag.Bool("fork", false,
		"start the log with junk records so tree heads do not extend a normal run")
	delay := flag.Duration("delay", 0,
		"wait this long before answering each request, like a distant database")
	flag.Parse()
	if *treeDir == "" || *keyFile == "" || flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}

	skey, vkey, err := loadOrCreateKey(*keyFile, *name)
	if err != nil {
		log.Fatalf("sumdb: key: %v", err)
	}
	ops, err := newRecordLog(skey, *treeDir, *recordsFile, *fork)
	if err != nil {
		log.Fatalf("sumdb: records: %v", err)
	}

	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("sumdb: listen: %v", err)
	}
	server := &http.Server{
		Handler:           logRequests(delayed(*delay, sumdb.NewServer(ops))),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	fmt.Printf("sumdb listening on http://%s key %s\n", listener.Addr(), vkey)
	log.Fatal(server.Serve(listener))
}

// loadOrCreateKey returns the signer and verifier keys stored in path (two lines), creating them
// for name when the file does not exist, so that a restarted server signs with the same key.
func loadOrCreateKey(path, name string) (skey, vkey string, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		skey, vkey, err = note.GenerateKey(rand.Reader, name)
		if err != nil {
			return "", "", err
		}
		if err := os.WriteFile(path, []byte(skey+"\n"+vkey+"\n"), 0o600); err != nil {
			return "", "", err
		}
		return skey, vkey, nil
	}
	if err != nil {
		return "", "", err
	}
	lines := strings.Fields(string(data))
	if len(lines) != 2 {
		return "", "", fmt.Errorf("%s: want two lines (signer key, verifier key)", path)
	}
	skey, vkey = lines[0], lines[1]
	signer, err := note.NewSigner(skey)
	if err != nil {
		return "", "", err
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		return "", "", err
	}
	if signer.Name() != name || verifier.Name() != name || signer.KeyHash() != verifier.KeyHash() {
		return "", "", fmt.Errorf("%s holds keys for %q, not a key pair for %q",
			path, signer.Name(), name)
	}
	return skey, vkey, nil
}

// goSumLines computes the record for one module version from the tree the way the go command
// checks downloads: h1 of the zip's entries, and h1 of the .mod as a lone file named go.mod.
// A version with a .mod but no .zip gets a record of its go.mod line alone, as databases other
// than sum.golang.org write for versions known only by their go.mod. A version missing from
// the tree gives an error os.IsNotExist recognises, which the server answers with 404.
func goSumLines(treeDir, path, version string) ([]byte, error) {
	escPath, err := module.EscapePath(path)
	if err != nil {
		return nil, err
	}
	escVersion, err := module.EscapeVersion(version)
	if err != nil {
		return nil, err
	}
	base := filepath.Join(treeDir, filepath.FromSlash(escPath), "@v", escVersion)
	mod, err := os.ReadFile(base + ".mod")
	if err != nil {
		return nil, err
	}
	modSum, err := dirhash.Hash1([]string{"go.mod"}, func(string) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(mod)), nil
	})
	if err != nil {
		return nil, err
	}
	modLine := fmt.Sprintf("%s %s/go.mod %s\n", path, version, modSum)
	if _, err := os.Stat(base + ".zip"); errors.Is(err, os.ErrNotExist) {
		return []byte(modLine), nil
	} else if err != nil {
		return nil, err
	}
	zipSum, err := dirhash.HashZip(base+".zip", dirhash.Hash1)
	if err != nil {
		return nil, err
	}
	return []byte(fmt.Sprintf("%s %s %s\n", path, version, zipSum) + modLine), nil
}

// persistedRecord is one line of the records file.
type persistedRecord struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	Text    string `json:"text"`
}

// recordLog wraps the reference in-memory sumdb.TestServer: it serialises lookups so records can
// be appended to the records file in log order, and answers 404 (not a panic or a 500) for tiles
// and records beyond the current tree, as the real server does.
type recordLog struct {
	inner *sumdb.TestServer

	mu      sync.Mutex
	size    int64
	persist *os.File // nil: records are not written
	replay  map[string][]byte
}

func newRecordLog(skey, treeDir, recordsFile string, fork bool) (*recordLog, error) {
	l := &recordLog{replay: make(map[string][]byte)}
	l.inner = sumdb.NewTestServer(skey, func(path, version string) ([]byte, error) {
		if text, ok := l.replay[path+"@"+version]; ok {
			return text, nil
		}
		return goSumLines(treeDir, path, version)
	})
	ctx := context.Background()
	if fork {
		for i := 0; i < forkRecords; i++ {
			junk := module.Version{Path: "fork.invalid/junk", Version: fmt.Sprintf("v0.0.%d", i)}
			l.replay[junk.String()] = []byte(fmt.Sprintf("%s %s h1:%044d\n", junk.Path, junk.Version, i))
			if _, err := l.Lookup(ctx, junk); err != nil {
				return nil, err
			}
		}
	}
	if recordsFile == "" {
		return l, nil
	}
	old, err := readRecords(recordsFile)
	if err != nil {
		return nil, err
	}
	for _, r := range old {
		m := module.Version{Path: r.Path, Version: r.Version}
		l.replay[m.String()] = []byte(r.Text)
		if _, err := l.Lookup(ctx, m); err != nil {
			return nil, err
		}
	}
	// A fork must not rewrite the history a later normal restart replays.
	if !fork {
		l.persist, err = os.OpenFile(recordsFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
	}
	return l, nil
}

func readRecords(path string) ([]persistedRecord, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var records []persistedRecord
	scanner := bufio.NewScanner(f)
	scanner.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for scanner.Scan() {
		var r persistedRecord
		if err := json.Unmarshal(scanner.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		records = append(records, r)
	}
	return records, scanner.Err()
}

func (l *recordLog) Signed(ctx context.Context) ([]byte, error) {
	return l.inner.Signed(ctx)
}

func (l *recordLog) ReadRecords(ctx context.Context, id, n int64) ([][]byte, error) {
	l.mu.Lock()
	size := l.size
	l.mu.Unlock()
	if id < 0 || n < 0 || id+n > size {
		return nil, os.ErrNotExist
	}
	return l.inner.ReadRecords(ctx, id, n)
}

func (l *recordLog) Lookup(ctx context.Context, m module.Version) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id, err := l.inner.Lookup(ctx, m)
	if err != nil {
		return 0, err
	}
	if id < l.size {
		return id, nil
	}
	l.size = id + 1
	if l.persist != nil {
		text, err := l.inner.ReadRecords(ctx, id, 1)
		if err != nil {
			return 0, err
		}
		entry := persistedRecord{Path: m.Path, Version: m.Version, Text: string(text[0])}
		line, err := json.Marshal(entry)
		if err != nil {
			return 0, err
		}
		if _, err := l.persist.Write(append(line, '\n')); err != nil {
			return 0, err
		}
	}
	return id, nil
}

func (l *recordLog) ReadTileData(ctx context.Context, t tlog.Tile) ([]byte, error) {
	l.mu.Lock()
	size := l.size
	l.mu.Unlock()
	width := int64(t.W)
	if width == 0 {
		width = 1 << uint(t.H)
	}
	last := tlog.StoredHashIndex(t.H*t.L, (t.N<<uint(t.H))+width-1)
	if last >= tlog.StoredHashCount(size) {
		return nil, os.ErrNotExist
	}
	return l.inner.ReadTileData(ctx, t)
}

// statusRecorder remembers the status a handler wrote, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// delayed waits `delay` before handing each request on; the wait is inside logRequests, so a
// request's log line still marks when its answer went out.
func delayed(delay time.Duration, next http.Handler) http.Handler {
	if delay <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(delay):
			next.ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	})
}

// logRequests writes "sumdb: <method> <request-uri> <status> <started> <answered>" to stderr for
// every request, which tests/support/test_sumdb.py parses into its request log. The two times are
// Unix microseconds: when the request arrived, before any -delay, and when the handler returned,
// before the server flushes the end of the answer, so a client that sends its next request only
// after reading the previous answer never logs two overlapping requests.
func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started := time.Now().UnixMicro()
		recorder := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(recorder, r)
		answered := time.Now().UnixMicro()
		fmt.Fprintf(os.Stderr, "sumdb: %s %s %d %d %d\n", r.Method, r.URL.RequestURI(),
			recorder.status, started, answered)
	})
}
