package readmetest

import (
	"fmt"
	"go/scanner"
	"go/token"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// readmePackages are the packages the Go blocks may use without
// importing them, as goimports would add them for the reader, by the name
// they are used with.
var readmePackages = map[string]string{
	"appjwt":      "github.com/lpconnect/appjwt",
	"appjwttest":  "github.com/lpconnect/appjwt/appjwttest",
	"brands":      "github.com/lpconnect/appjwt/brands",
	"consumerjws": "github.com/lpconnect/appjwt/consumerjws",
	"webhook":     "github.com/lpconnect/appjwt/webhook",
	"secret":      "github.com/lpconnect/appjwt/secret",
	"store":       "github.com/lpconnect/appjwt/store",
	"oauth2":      "golang.org/x/oauth2",
	"context":     "context",
	"errors":      "errors",
	"fmt":         "fmt",
	"http":        "net/http",
	"httptest":    "net/http/httptest",
	"io":          "io",
	"log":         "log",
	"os":          "os",
	"slog":        "log/slog",
	"strings":     "strings",
	"testing":     "testing",
	"time":        "time",
}

// readmeBlock is a ```go block of a Markdown text.
type readmeBlock struct {
	line int    // the number of its first line in the text
	code string // without the indentation of its fence
}

// readmeBlocks returns the ```go blocks of md, including those indented
// under a list item.
func readmeBlocks(md string) []readmeBlock {
	var blocks []readmeBlock
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		indent, ok := strings.CutSuffix(lines[i], "```go")
		if !ok || strings.Trim(indent, " ") != "" {
			continue
		}
		b := readmeBlock{line: i + 2}
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			b.code += strings.TrimPrefix(lines[i], indent) + "\n"
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// wholeFile returns where block b goes if it is a whole Go file, one that
// starts with its package clause: in a directory named for its package,
// with the other files of that package in README.md and docs/, as a test
// file if it has a test. It returns "" for a fragment.
func wholeFile(b readmeBlock, text string, n int) (path, content string) {
	pkg, ok := strings.CutPrefix(b.code, "package ")
	if !ok {
		return "", ""
	}
	pkg, _, _ = strings.Cut(pkg, "\n")
	name := fmt.Sprintf("block%03d.go", n)
	if strings.Contains(b.code, "\nfunc Test") {
		name = fmt.Sprintf("block%03d_test.go", n)
	}
	// A line directive after the package clause points messages into text.
	clause, rest, _ := strings.Cut(b.code, "\n")
	return filepath.Join("pkg_"+pkg, name), fmt.Sprintf("%s\n//line %s:%d\n%s", clause, text, b.line+1, rest)
}

// readmeProgram makes b a file of package main, with the imports it uses:
// the block as it is if it declares functions, else the body of main. A
// line directive makes the compiler's messages point into file.
func readmeProgram(b readmeBlock, file string) string {
	// Scanning, not searching the text, keeps "context." in a comment or a
	// string from adding an import that would then be unused.
	imports := map[string]bool{}
	src := []byte(b.code)
	var s scanner.Scanner
	s.Init(token.NewFileSet().AddFile("", -1, len(src)), src, nil, 0)
	// before and prev are the two tokens before tok; name is prev's text.
	before, prev, name := token.ILLEGAL, token.ILLEGAL, ""
	for {
		_, tok, lit := s.Scan()
		if tok == token.EOF {
			break
		}
		if path, ok := readmePackages[name]; ok && tok == token.PERIOD && prev == token.IDENT && before != token.PERIOD {
			imports[path] = true
		}
		before, prev, name = prev, tok, lit
	}

	var p strings.Builder
	p.WriteString("package main\n\nimport (\n")
	for _, path := range slices.Sorted(maps.Keys(imports)) {
		fmt.Fprintf(&p, "\t%q\n", path)
	}
	p.WriteString(")\n\n")
	directive := fmt.Sprintf("//line %s:%d\n", file, b.line)
	declares := strings.HasPrefix(b.code, "func ") || strings.Contains(b.code, "\nfunc ") ||
		strings.HasPrefix(b.code, "type ") || strings.Contains(b.code, "\ntype ")
	switch {
	case !declares:
		p.WriteString("func main() {\n" + directive + b.code + "}\n")
	case strings.Contains(b.code, "\nfunc main() {") || strings.HasPrefix(b.code, "func main() {"):
		p.WriteString(directive + b.code)
	default:
		p.WriteString(directive + b.code + "\nfunc main() {}\n")
	}
	return p.String()
}

// TestReadmeSnippets compiles and vets every ```go block of README.md and
// of the Markdown files under docs/, each as a package of one module that
// uses this repository through a replace directive, as a reader who pastes
// it would.
func TestReadmeSnippets(t *testing.T) {
	t.Run("blocks", testReadmeBlocks)
	t.Run("program", testReadmeProgram)
	t.Run("vet", testReadmeVet)
}

func testReadmeProgram(t *testing.T) {
	tests := []struct {
		name string
		code string
		want string
	}{
		{"fragment", "ctx := context.Background() // not fmt.Println\nfmt.Println(ctx, \"os.Args\", cfg.Client, cfg.time.Now)\n",
			"package main\n\nimport (\n\t\"context\"\n\t\"fmt\"\n)\n\nfunc main() {\n//line README.md:7\nctx := context.Background() // not fmt.Println\nfmt.Println(ctx, \"os.Args\", cfg.Client, cfg.time.Now)\n}\n"},
		{"file", "func TestX(t *testing.T) {\n\thttp.Get(srv.URL())\n}\n",
			"package main\n\nimport (\n\t\"net/http\"\n\t\"testing\"\n)\n\n//line README.md:7\nfunc TestX(t *testing.T) {\n\thttp.Get(srv.URL())\n}\n\nfunc main() {}\n"},
		{"file with main", "type T int\n\nfunc main() { log.Print(T(1)) }\n",
			"package main\n\nimport (\n\t\"log\"\n)\n\n//line README.md:7\ntype T int\n\nfunc main() { log.Print(T(1)) }\n"},
	}
	for _, tt := range tests {
		if got := readmeProgram(readmeBlock{7, tt.code}, "README.md"); got != tt.want {
			t.Errorf("%s: readmeProgram(%q):\n%s\nwant:\n%s", tt.name, tt.code, got, tt.want)
		}
	}
}

func TestWholeFile(t *testing.T) {
	tests := []struct {
		code, path, content string
	}{
		{"a := 1\n", "", ""},
		{"package c\n\nfunc F() {}\n", "pkg_c/block003.go", "package c\n//line README.md:8\n\nfunc F() {}\n"},
		{"package c\n\nfunc TestF(t *testing.T) {}\n", "pkg_c/block003_test.go", "package c\n//line README.md:8\n\nfunc TestF(t *testing.T) {}\n"},
	}
	for _, tt := range tests {
		path, content := wholeFile(readmeBlock{7, tt.code}, "README.md", 3)
		if path != tt.path || content != tt.content {
			t.Errorf("wholeFile(%q) = %q, %q; want %q, %q", tt.code, path, content, tt.path, tt.content)
		}
	}
}

func testReadmeBlocks(t *testing.T) {
	md := "# T\n\n```go\na := 1\n```\n\n- item\n\n  ```go\n  if x {\n  \ty()\n  }\n  ```\n\n```\nnot go\n```\n"
	want := []readmeBlock{{4, "a := 1\n"}, {10, "if x {\n\ty()\n}\n"}}
	if diff := cmp.Diff(want, readmeBlocks(md), cmp.AllowUnexported(readmeBlock{})); diff != "" {
		t.Errorf("readmeBlocks (-want +got):\n%s", diff)
	}
}

func testReadmeVet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command:", err)
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	texts := append([]string{filepath.Join(root, "README.md")}, docs...)
	// The repository's own requirements and go.sum pin the dependencies, so
	// that the go command needs no more than what this package's test has
	// already downloaded.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	gosum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	module, rest, ok := strings.Cut(string(gomod), "\n")
	if !ok || module != "module github.com/lpconnect/appjwt" {
		t.Fatalf("go.mod starts %q, want the module line", module)
	}
	dir := t.TempDir()
	files := map[string]string{
		"go.mod": "module readme.example\n" + rest + fmt.Sprintf("\nrequire github.com/lpconnect/appjwt v0.0.0\n\nreplace github.com/lpconnect/appjwt => %q\n", root),
		"go.sum": string(gosum),
	}
	n := 0
	var packages []string // of whole files, which go test runs
	for _, text := range texts {
		md, err := os.ReadFile(text)
		if err != nil {
			t.Fatal(err)
		}
		blocks := readmeBlocks(string(md))
		if len(blocks) == 0 && filepath.Base(text) == "README.md" {
			t.Fatal("README.md has no ```go block")
		}
		for _, b := range blocks {
			n++
			path, content := wholeFile(b, text, n)
			if path == "" {
				path, content = filepath.Join(fmt.Sprintf("block%03d", n), "main.go"), readmeProgram(b, text)
			} else if !slices.Contains(packages, filepath.Dir(path)) {
				packages = append(packages, filepath.Dir(path))
			}
			files[path] = content
		}
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	for _, pkg := range packages {
		cmd := exec.Command(goCmd, "test", "-count=1", "./"+pkg)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("go test of the files of package %s in README.md and docs/: %v\n%s", pkg, err, out)
		}
	}
	cmd := exec.Command(goCmd, "vet", "./...")
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("go vet over the %d Go blocks of README.md and docs/: %v\n%s", n, err, out)
	}
}
