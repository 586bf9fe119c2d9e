package release

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/capstan-io/capstan/internal/wait"
)

// Delta bundles store each file once, content-addressed: the object
// "files/<sha>" in the object store holds the bytes whose SHA-256 hex is
// <sha>, and the key <sha> of the files bucket records it. Bundles that
// share a file share the object. A record moves
//
//	absent (rev R) ─put bytes, update expecting R─► live ─claim: rewrite expecting its rev─► live
//	live (rev L, unused, older than fileGrace) ─update expecting L─► deleting ─delete bytes, delete key expecting its rev─► absent
//
// An upload claims (rewrites) every file it uses before it commits its
// bundle and commits within fileGrace/2 of its start; a sweep deletes
// only a record unused by every bundle of a current snapshot whose last
// write is older than fileGrace, and marks it deleting first on condition of the
// revision it read. So a claim and a sweep of one file never both
// succeed: either the claim lands first and the sweep's mark fails, or the
// mark lands first and the upload waits for the key to go, then stores
// the bytes again. Bytes are only deleted under a deleting mark, and a
// live record is only written after its writer stored the bytes, on
// condition of a revision read before it did: a live record always has
// its bytes.

// DefaultFileBucket is the key-value bucket recording delta files.
const DefaultFileBucket = "capstan_files"

// fileGrace is how long a file record's last write protects it from a
// sweep; an upload must commit within half of it. Tests shorten it.
var fileGrace atomic.Int64

// fileStaleMark is the age past which a deleting mark is taken as left by
// a sweep that died, and finished by whoever meets it.
const fileStaleMark = 5 * time.Minute

func init() { fileGrace.Store(int64(time.Hour)) }

// FileObjectPrefix starts the object name of every delta file.
const FileObjectPrefix = "files/"

// Record states.
const (
	fileLive     = ""
	fileDeleting = "deleting"
)

type fileRecord struct {
	Size  int64  `json:"size"`
	State string `json:"state,omitempty"`
}

// FileSource is one file of a delta bundle handed to CreateBundleFiles:
// Open returns its stored bytes, whose SHA-256 hex is SHA256. Open may be
// called more than once (a retry stores the bytes again).
type FileSource struct {
	SHA256 string
	Size   int64
	Open   func() (io.Reader, error)
}

// fileEntry is a record's newest message.
type fileEntry struct {
	rev  uint64 // 0: never written
	live bool   // a put, not a delete marker
	rec  fileRecord
	time time.Time
}

// Next steps of one claim, decided from what the record holds.
type claimStep int

const (
	claimStore  claimStep = iota // absent: store the bytes, then write the record
	claimTouch                   // live: rewrite it so sweeps see it in use
	claimWait                    // a sweep is deleting it: wait for the key to go
	claimFinish                  // a stale deleting mark: finish the delete, then store
)

// decideClaim is what an upload does with a file's record, age being how
// long ago its last write was.
func decideClaim(e fileEntry, age time.Duration) claimStep {
	switch {
	case !e.live:
		return claimStore
	case e.rec.State == fileDeleting && age > fileStaleMark:
		return claimFinish
	case e.rec.State == fileDeleting:
		return claimWait
	}
	return claimTouch
}

// Steps of a sweep over one file.
type sweepStep int

const (
	sweepKeep   sweepStep = iota
	sweepMark             // mark it deleting, then delete
	sweepFinish           // a stale deleting mark: finish the delete
)

// decideSweep is what a sweep does with a file's record: used is whether
// a bundle of a current snapshot refers to it; only records last written
// before cutoff (now less fileGrace) may go.
func decideSweep(e fileEntry, used bool, now, cutoff time.Time) sweepStep {
	switch {
	case !e.live:
		return sweepKeep
	case e.rec.State == fileDeleting && now.Sub(e.time) > fileStaleMark:
		return sweepFinish
	case e.rec.State == fileDeleting, used, !e.time.Before(cutoff):
		return sweepKeep
	}
	return sweepMark
}

func openFileBucket(ctx context.Context, js jetstream.JetStream, opts Options) (jetstream.KeyValue, jetstream.Stream, error) {
	kv, err := js.KeyValue(ctx, opts.FileBucket)
	if err != nil || kv == nil {
		kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      opts.FileBucket,
			Description: "Capstan delta bundle files, content-addressed",
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    opts.Replicas,
		})
		if err != nil {
			return nil, nil, err
		}
	}
	st, err := js.Stream(ctx, "KV_"+opts.FileBucket)
	if err != nil {
		return nil, nil, fmt.Errorf("stream KV_%s: %w", opts.FileBucket, err)
	}
	return kv, st, nil
}

// fileLast reads a file record's newest message, delete markers included.
func (s *Store) fileLast(ctx context.Context, sha string) (fileEntry, error) {
	m, err := lastOn(ctx, s.filesStream, "$KV."+s.opts.FileBucket+"."+sha)
	if err != nil {
		return fileEntry{}, fmt.Errorf("read file record %s: %w", sha, err)
	}
	e := fileEntry{rev: m.seq, live: m.live, time: m.time}
	if e.live {
		if err := json.Unmarshal(m.data, &e.rec); err != nil {
			return fileEntry{}, fmt.Errorf("file record %s: %w", sha, err)
		}
	}
	return e, nil
}

// errFileRace marks a conditional write that lost to another writer.
var errFileRace = errors.New("file record changed meanwhile")

// fileWrite writes a record on condition its newest revision is rev
// (0: never written) and returns the new revision.
func (s *Store) fileWrite(ctx context.Context, sha string, rec fileRecord, rev uint64) (uint64, error) {
	data, _ := json.Marshal(rec)
	n, err := s.files.Update(ctx, sha, data, rev)
	if err != nil && isWrongSeq(err) {
		return 0, errFileRace
	}
	if err != nil {
		return 0, fmt.Errorf("write file record %s: %w", sha, err)
	}
	return n, nil
}

func isWrongSeq(err error) bool {
	var ae *jetstream.APIError
	return errors.As(err, &ae) && ae.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		errors.Is(err, jetstream.ErrKeyExists)
}

// claimFile makes sure f's bytes are stored and its record protects them
// from sweeps until the upload commits (see the comment at the top).
func (s *Store) claimFile(ctx context.Context, f FileSource) error {
	if !ValidHashHex(f.SHA256) {
		return fmt.Errorf("%w: file digest %q is not a SHA-256 hex", ErrInvalid, f.SHA256)
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("claim file %s: %w", f.SHA256, err)
		}
		if attempt > 2000 { // 100 s of waiting for sweeps, or endless races
			return fmt.Errorf("claim file %s: %w", f.SHA256, ErrConcurrent)
		}
		e, err := s.fileLast(ctx, f.SHA256)
		if err != nil {
			return err
		}
		switch decideClaim(e, time.Since(e.time)) {
		case claimWait:
			wait.Sleep(ctx, 50*time.Millisecond)
			continue
		case claimFinish:
			if err := s.fileFinishDelete(ctx, f.SHA256, e.rev); err != nil && !errors.Is(err, errFileRace) {
				return err
			}
			continue
		case claimTouch:
			_, err = s.fileWrite(ctx, f.SHA256, e.rec, e.rev)
		case claimStore:
			if err := s.filePut(ctx, f); err != nil {
				return err
			}
			_, err = s.fileWrite(ctx, f.SHA256, fileRecord{Size: f.Size}, e.rev)
		}
		if errors.Is(err, errFileRace) {
			continue
		}
		return err
	}
}

// filePut stores f's bytes, checking their digest and size.
func (s *Store) filePut(ctx context.Context, f FileSource) error {
	r, err := f.Open()
	if err != nil {
		return fmt.Errorf("open file %s: %w", f.SHA256, err)
	}
	t := &bundleTemp{h: sha256.New(), err: errNoCache}
	info, err := s.obs.Put(ctx, jetstream.ObjectMeta{Name: FileObjectPrefix + f.SHA256}, io.TeeReader(r, t))
	if err != nil {
		return fmt.Errorf("store file %s: %w", f.SHA256, err)
	}
	if got := hex.EncodeToString(t.h.Sum(nil)); got != f.SHA256 || int64(info.Size) != f.Size {
		_ = s.obs.Delete(context.WithoutCancel(ctx), FileObjectPrefix+f.SHA256)
		return fmt.Errorf("%w: file %s: stored %d bytes with digest %s", ErrInvalid, f.SHA256, info.Size, got)
	}
	return nil
}

// errNoCache makes a bundleTemp hash without writing a file.
var errNoCache = errors.New("not cached")

// fileFinishDelete deletes the bytes of a record marked deleting at rev,
// then the record, on condition it is still that mark.
func (s *Store) fileFinishDelete(ctx context.Context, sha string, rev uint64) error {
	if err := s.obs.Delete(ctx, FileObjectPrefix+sha); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("delete file %s: %w", sha, err)
	}
	if err := s.files.Delete(ctx, sha, jetstream.LastRevision(rev)); err != nil {
		if isWrongSeq(err) {
			return errFileRace
		}
		return fmt.Errorf("delete file record %s: %w", sha, err)
	}
	_ = os.Remove(s.filePath(sha))
	return nil
}

// claimFiles claims every file with a few workers; the first failure
// stops the rest.
func (s *Store) claimFiles(ctx context.Context, files []FileSource) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, f := range files {
		g.Go(func() error { return s.claimFile(ctx, f) })
	}
	return g.Wait()
}

// usedFiles is the set of file objects a snapshot's bundles refer to.
func usedFiles(snap *Snapshot) map[string]bool {
	used := map[string]bool{}
	for _, st := range snap.apps {
		for _, b := range st.bundles {
			for _, m := range b.Manifest {
				if m.Object != "" {
					used[m.Object] = true
				}
			}
		}
	}
	return used
}

// currentSnapshot waits until the local snapshot reflects every write to
// the release bucket made before the call; an error when it does not in
// time, or when some bundle cannot be read (its files might be in use).
func (s *Store) currentSnapshot(ctx context.Context) (*Snapshot, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("release stream info: %w", err)
	}
	s.waitApplied(ctx, info.State.LastSeq)
	if s.applied.Load() < info.State.LastSeq {
		return nil, fmt.Errorf("release snapshot behind the bucket (%d < %d)", s.applied.Load(), info.State.LastSeq)
	}
	for _, e := range s.InvalidEntries() {
		if strings.HasPrefix(e.Key, "bundle.") {
			return nil, fmt.Errorf("bundle key %s cannot be read; its files may be in use", e.Key)
		}
	}
	return s.Snapshot(), nil
}

// SweepFiles deletes delta files no bundle uses whose records were last
// written more than the grace period ago (an hour: uploads under way may
// be about to use them). candidates limits the sweep to those objects;
// nil sweeps every record. It returns how many files it deleted.
func (s *Store) SweepFiles(ctx context.Context, candidates []string) (int, error) {
	snap, err := s.currentSnapshot(ctx)
	if err != nil {
		return 0, fmt.Errorf("sweep files: %w", err)
	}
	if candidates == nil {
		keys, err := s.files.ListKeys(ctx)
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return 0, nil
		}
		if err != nil {
			return 0, fmt.Errorf("sweep files: list: %w", err)
		}
		for k := range keys.Keys() {
			candidates = append(candidates, k)
		}
	}
	used := usedFiles(snap)
	now := time.Now()
	cutoff := now.Add(-time.Duration(fileGrace.Load()))
	if s.fileCutoff != nil {
		cutoff = s.fileCutoff()
	}
	deleted := 0
	for _, sha := range candidates {
		if !ValidHashHex(sha) || used[sha] {
			continue
		}
		e, err := s.fileLast(ctx, sha)
		if err != nil {
			return deleted, fmt.Errorf("sweep files: %w", err)
		}
		switch decideSweep(e, false, now, cutoff) {
		case sweepKeep:
			continue
		case sweepMark:
			mark := e.rec
			mark.State = fileDeleting
			rev, err := s.fileWrite(ctx, sha, mark, e.rev)
			if errors.Is(err, errFileRace) {
				continue // claimed meanwhile
			}
			if err != nil {
				return deleted, fmt.Errorf("sweep files: %w", err)
			}
			e.rev = rev
		}
		// Bounded, so a stale mark really means a dead sweep.
		dctx, cancel := context.WithTimeout(ctx, time.Minute)
		err = s.fileFinishDelete(dctx, sha, e.rev)
		cancel()
		if err != nil && !errors.Is(err, errFileRace) {
			return deleted, fmt.Errorf("sweep files: %w", err)
		}
		if err == nil {
			deleted++
		}
	}
	return deleted, nil
}

// removeOrphanFiles deletes stored file bytes that have no record (an
// upload that died between the two), older than orphanAge. It marks the
// absent record deleting first, so an upload storing the same file now
// waits and stores it again.
func (s *Store) removeOrphanFiles(ctx context.Context, list []*jetstream.ObjectInfo) {
	for _, o := range list {
		sha, ok := strings.CutPrefix(o.Name, FileObjectPrefix)
		if !ok || !ValidHashHex(sha) || time.Since(o.ModTime) < time.Duration(orphanAge.Load()) {
			continue
		}
		e, err := s.fileLast(ctx, sha)
		if err != nil || e.live {
			continue
		}
		rev, err := s.fileWrite(ctx, sha, fileRecord{State: fileDeleting}, e.rev)
		if err != nil {
			continue
		}
		if err := s.fileFinishDelete(ctx, sha, rev); err != nil {
			s.log.Warn("release repair: delete orphaned file", "object", o.Name, "err", err)
			continue
		}
		s.log.Info("release repair: deleted orphaned file", "object", o.Name)
	}
}

func (s *Store) filePath(sha string) string {
	return filepath.Join(s.opts.CacheDir, sha+".file")
}

// OpenFile returns a stored delta file's bytes (read from the local
// cache, filled from the object store on first use and verified against
// sha) and their size. ErrNotFound when no such file is stored.
func (s *Store) OpenFile(ctx context.Context, sha string) (*os.File, int64, error) {
	if !ValidHashHex(sha) {
		return nil, 0, fmt.Errorf("file %q: %w", sha, ErrNotFound)
	}
	path := s.filePath(sha)
	if f, err := os.Open(path); err == nil {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			return f, st.Size(), nil
		}
		f.Close()
	}
	e, err := s.fileLast(ctx, sha)
	if err != nil {
		return nil, 0, err
	}
	if !e.live || e.rec.State == fileDeleting {
		return nil, 0, fmt.Errorf("file %s: %w", sha, ErrNotFound)
	}
	pseudo := Bundle{Version: "file " + sha, Object: FileObjectPrefix + sha, ObjectSHA256: sha, Size: e.rec.Size}
	if err := s.bundleFill(ctx, pseudo, path); err != nil {
		return nil, 0, err
	}
	f, ok := openCached(path, e.rec.Size)
	if !ok {
		return nil, 0, fmt.Errorf("file %s: cached file vanished", sha)
	}
	return f, e.rec.Size, nil
}
