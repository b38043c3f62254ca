package consumerjws

import (
	"strconv"
	"strings"

	"github.com/lpconnect/appjwt/internal/lphttp"
	"github.com/lpconnect/appjwt/internal/redact"
	"golang.org/x/oauth2"
)

// withheldText replaces a text from a server that echoed the AppJWT or the
// ext_consumer_id.
const withheldText = "[withheld: it echoed the request]"

// retrieveError describes a non-2xx answer with nothing in it that echoes
// an AppJWT the fetch sent: such a body or header is withheld, the status
// line is rebuilt from the code, and the request is a headerless copy.
func (l *sentLog) retrieveError(rep *lphttp.Reply) error {
	r := l.redactor()
	body := r.Body(rep.Body, maxErrorBody)
	re := &oauth2.RetrieveError{Response: r.Response(rep.Resp, rep.Resp.Request), Body: body}
	status := rep.Resp.Status
	if n := lphttp.ErrorCode(rep.Body); n != 0 {
		re.ErrorCode = strconv.Itoa(n)
		status += " (errorCode " + re.ErrorCode + ")"
	}
	msg := status + ": answer " + r.Quote(body, len(rep.Body), maxQuoted)
	return &lphttp.RetrieveFailure{Msg: msg, RE: re}
}

// maxQuoted is the longest answer an error message quotes; a longer one
// is only counted, as quoting part of it could show part of a secret.
const maxQuoted = 256

// redactor withholds what an answer echoes of what the fetch sent.
func (l *sentLog) redactor() redact.Redactor {
	return redact.Redactor{Secrets: l.secrets(), Withheld: withheldText}
}

// withhold replaces an error whose text echoes an AppJWT the fetch sent,
// such as net/http quoting a malformed status line; only a context error
// in it stays reachable.
func (l *sentLog) withhold(err error) error {
	return l.redactor().Withhold(err, "request failed; error text withheld: it echoed the request")
}

// secrets are what the fetch sent that no error may show: each AppJWT's
// signature, without which the rest of a JWT is no credential (or the
// whole token if it is no JWT), and the ext_consumer_id, if it is long
// enough not to match by chance.
func (l *sentLog) secrets() []string {
	var s []string
	if len(l.id) >= minEchoedID {
		s = append(s, l.id)
	}
	for _, t := range l.tokens {
		t = strings.TrimPrefix(t, "Bearer ")
		if i := strings.LastIndexByte(t, '.'); i >= 0 && len(t)-i-1 >= minSignature {
			t = t[i+1:]
		}
		s = append(s, t)
	}
	return s
}

// minEchoedID is the shortest ext_consumer_id looked for in error texts:
// shorter ones would match by chance, and name no one.
const minEchoedID = 4

// minSignature is the shortest JWT signature looked for alone: shorter
// ones would match by chance.
const minSignature = 16
