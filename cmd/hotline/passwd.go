package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"golang.org/x/term"

	"github.com/hotline-project/hotline/sip/digest"
)

var reAdvocateID = regexp.MustCompile(`^[a-z0-9_.-]+$`)

// passwdCmd reads an advocate's password from in and prints the advocates entry holding its
// HA1 values, to paste into the configuration. The password itself is printed nowhere. When
// in is a terminal the password is read without echo.
func passwdCmd(args []string, in io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("passwd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "advocate `id`, also their phone's SIP user name (required)")
	realm := fs.String("realm", "hotline", "digest `realm`: sip.realm of the configuration")
	langs := fs.String("languages", "en", "comma-separated language `tags` the advocate speaks, such as en,es")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("passwd: unexpected argument %q", fs.Arg(0))
	}
	if !reAdvocateID.MatchString(*id) {
		return fmt.Errorf("passwd: -id %q: want lowercase letters, digits, _, . and -", *id)
	}
	if *realm == "" || strings.ContainsAny(*realm, "\"\\\r\n") {
		return fmt.Errorf("passwd: -realm %q: want a non-empty realm without quotes, backslashes or line breaks", *realm)
	}
	password, err := readPassword(in, stderr)
	if err != nil {
		return fmt.Errorf("passwd: %w", err)
	}
	if password == "" {
		return errors.New("passwd: empty password")
	}
	sha, _ := digest.ComputeHA1(digest.SHA256, *id, *realm, password)
	md5, _ := digest.ComputeHA1(digest.MD5, *id, *realm, password)
	_, err = fmt.Fprintf(stdout, "  - id: %s\n    languages: [%s]\n    ha1_sha256: %s\n    ha1_md5: %s\n",
		*id, strings.Join(strings.Split(*langs, ","), ", "), sha, md5)
	return err
}

// readPassword reads one line: without echo from a terminal, as it comes otherwise.
func readPassword(in io.Reader, prompt io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "Password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
