package release

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestDecideClaim(t *testing.T) {
	live := fileEntry{rev: 3, live: true}
	deleting := fileEntry{rev: 4, live: true, rec: fileRecord{State: fileDeleting}}
	for _, c := range []struct {
		name string
		e    fileEntry
		age  time.Duration
		want claimStep
	}{
		{"never written", fileEntry{}, 0, claimStore},
		{"deleted", fileEntry{rev: 9}, time.Hour, claimStore},
		{"live, fresh", live, 0, claimTouch},
		{"live, old", live, 48 * time.Hour, claimTouch},
		{"being deleted", deleting, time.Second, claimWait},
		{"mark of a dead sweep", deleting, fileStaleMark + time.Second, claimFinish},
	} {
		if got := decideClaim(c.e, c.age); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestDecideSweep(t *testing.T) {
	now := time.Now()
	cutoff := now.Add(-time.Hour)
	old := fileEntry{rev: 3, live: true, time: now.Add(-2 * time.Hour)}
	young := fileEntry{rev: 3, live: true, time: now.Add(-time.Minute)}
	mark := func(age time.Duration) fileEntry {
		return fileEntry{rev: 5, live: true, time: now.Add(-age), rec: fileRecord{State: fileDeleting}}
	}
	for _, c := range []struct {
		name string
		e    fileEntry
		used bool
		want sweepStep
	}{
		{"absent", fileEntry{}, false, sweepKeep},
		{"old, unused", old, false, sweepMark},
		{"old, used", old, true, sweepKeep},
		{"claimed within the grace", young, false, sweepKeep},
		{"another sweep at work", mark(time.Second), false, sweepKeep},
		{"mark of a dead sweep", mark(fileStaleMark + time.Second), false, sweepFinish},
	} {
		if got := decideSweep(c.e, c.used, now, cutoff); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func fileSrc(content string) FileSource {
	h := sha256.Sum256([]byte(content))
	return FileSource{SHA256: hex.EncodeToString(h[:]), Size: int64(len(content)),
		Open: func() (io.Reader, error) { return strings.NewReader(content), nil }}
}

func deltaBundle(app, version string, files ...FileSource) Bundle {
	b := Bundle{AppID: app, Version: version}
	for i, f := range files {
		b.Manifest = append(b.Manifest, ManifestEntry{FileName: "f" + string(rune('a'+i)), FileHash: f.SHA256, Object: f.SHA256, Size: f.Size})
	}
	return b
}

func fileObjects(t *testing.T, s *Store) map[string]bool {
	t.Helper()
	list, err := s.obs.List(tctx(t))
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	must(t, err)
	out := map[string]bool{}
	for _, o := range list {
		if sha, ok := strings.CutPrefix(o.Name, FileObjectPrefix); ok {
			out[sha] = true
		}
	}
	return out
}

// Files shared by bundles are stored once; deleting a bundle frees only
// the files no other bundle uses.
func TestDeltaFilesSharedAndFreed(t *testing.T) {
	b := testBus(t, t.TempDir(), "")
	s := testStore(t, b.JetStream, Options{})
	s.fileCutoff = time.Now // no grace: every unused file goes at once
	ctx := tctx(t)
	must(t, s.CreateApp(ctx, App{ID: "app"}))
	fa, fb, fc := fileSrc("shared file"), fileSrc("only in 1"), fileSrc("only in 2")
	must(t, s.CreateBundleFiles(ctx, deltaBundle("app", "1", fa, fb), bytes.NewReader(zipBytes(100)), []FileSource{fa, fb}))
	must(t, s.CreateBundleFiles(ctx, deltaBundle("app", "2", fa, fc), bytes.NewReader(zipBytes(100)), []FileSource{fa, fc}))
	if got := fileObjects(t, s); len(got) != 3 {
		t.Fatalf("stored files %v, want 3", got)
	}
	f, size, err := s.OpenFile(ctx, fa.SHA256)
	must(t, err)
	got, _ := io.ReadAll(f)
	f.Close()
	if string(got) != "shared file" || size != fa.Size {
		t.Fatalf("OpenFile: %q (%d bytes)", got, size)
	}
	must(t, s.DeleteBundle(ctx, "app", "1"))
	if got := fileObjects(t, s); len(got) != 2 || !got[fa.SHA256] || !got[fc.SHA256] {
		t.Fatalf("after deleting 1: %v, want the shared file and 2's", got)
	}
	must(t, s.DeleteBundle(ctx, "app", "2"))
	if got := fileObjects(t, s); len(got) != 0 {
		t.Fatalf("after deleting both: %v, want none", got)
	}
	if _, _, err := s.OpenFile(ctx, fb.SHA256); !errors.Is(err, ErrNotFound) {
		t.Fatalf("OpenFile of a freed file: %v, want ErrNotFound", err)
	}
	// A file listed by no manifest entry is refused.
	wantErr(t, s.CreateBundleFiles(ctx, deltaBundle("app", "3", fa), nil, []FileSource{fa, fb}), ErrInvalid)
	// Bytes that do not match their digest are refused.
	bad := fa
	bad.Open = func() (io.Reader, error) { return strings.NewReader("other bytes"), nil }
	wantErr(t, s.CreateBundleFiles(ctx, deltaBundle("app", "3", bad), nil, []FileSource{bad}), ErrInvalid)
}

// A sweep on one front and an upload using the same file on another never
// leave a committed bundle without its file: the claim and the sweep's
// deleting mark are both conditional on the record's revision, and a
// record claimed after the sweep's cutoff is never taken.
func TestSweepRacesUpload(t *testing.T) {
	f := newFronts(t)
	ctx := tctx(t)
	must(t, f.a.CreateApp(ctx, App{ID: "app"}))
	x := fileSrc(strings.Repeat("shared between bundles ", 50))
	c := testStore(t, f.js, Options{})
	for run := range raceRuns {
		// The file is stored, then left unused by every bundle.
		v := "old" + string(rune('a'+run))
		must(t, f.a.CreateBundleFiles(ctx, deltaBundle("app", v, x), nil, []FileSource{x}))
		must(t, f.a.DeleteBundle(ctx, "app", v))
		cutoff := time.Now()
		f.b.fileCutoff = func() time.Time { return cutoff }
		nv := "new" + string(rune('a'+run))
		upErr, swErr := race(run, func() error {
			return f.a.CreateBundleFiles(ctx, deltaBundle("app", nv, x), nil, []FileSource{x})
		}, func() error {
			_, err := f.b.SweepFiles(ctx, []string{x.SHA256})
			return err
		})
		must(t, swErr)
		must(t, upErr)
		// A third front, with an empty cache, must read the file.
		_ = os.Remove(c.filePath(x.SHA256))
		visibleWithin(t, c, 5*time.Second, func(s *Snapshot) bool { _, ok := s.Bundle("app", nv); return ok })
		r, _, err := c.OpenFile(ctx, x.SHA256)
		if err != nil {
			t.Fatalf("run %d: bundle %s committed but its file cannot be read: %v", run, nv, err)
		}
		r.Close()
		f.b.fileCutoff = nil
		must(t, f.a.DeleteBundle(ctx, "app", nv))
	}
}
