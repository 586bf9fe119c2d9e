package deploy

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Flag is one command-line flag of the capstan binary and the environment
// variable that sets it.
type Flag struct {
	Name string // without dashes
	Env  string
	File string // where it is defined, e.g. "cmd/capstan/serve.go"
}

// flagHelpers are cmd/capstan's flag constructors: fn(fs, name, ENV, ...).
var flagHelpers = map[string]bool{
	"stringFlag": true, "intFlag": true, "int64Flag": true, "durationFlag": true, "boolFlag": true,
}

// CommandFlags reads the flag definitions of cmd/capstan (non-test files)
// from source: every call of stringFlag/intFlag/... with literal name and
// environment variable.
func CommandFlags(repoRoot string) ([]Flag, error) {
	dir := filepath.Join(repoRoot, "cmd", "capstan")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	var out []Flag
	fset := token.NewFileSet()
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		rel, _ := filepath.Rel(repoRoot, path)
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 3 {
				return true
			}
			id, ok := call.Fun.(*ast.Ident)
			if !ok || !flagHelpers[id.Name] {
				return true
			}
			name, ok1 := stringLit(call.Args[1])
			env, ok2 := stringLit(call.Args[2])
			if ok1 && ok2 {
				out = append(out, Flag{Name: name, Env: env, File: filepath.ToSlash(rel)})
			}
			return true
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].File+out[i].Name < out[j].File+out[j].Name })
	return out, nil
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

var metricLiteral = regexp.MustCompile(`"(capstan_[a-z0-9_]+)"`)

// SourceMetricNames lists the capstan_* names that appear as string
// literals in the repository's non-test Go files outside deploy/: the
// metrics the code registers.
func SourceMetricNames(repoRoot string) (map[string]bool, error) {
	names := map[string]bool{}
	err := filepath.WalkDir(repoRoot, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".cache", "node_modules", "deploy", "data":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range metricLiteral.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		return nil
	})
	return names, err
}
