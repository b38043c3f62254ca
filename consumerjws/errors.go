package consumerjws

import (
	"fmt"
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
	body := r.Field(rep.Body, maxErrorBody)
	re := &oauth2.RetrieveError{Response: r.Response(rep.Resp, rep.Resp.Request), Body: body}
	if n := lphttp.ErrorCode(rep.Body); n != 0 {
		re.ErrorCode = strconv.Itoa(n)
	}
	msg := fmt.Sprintf("%s: answer %.120q", rep.Resp.Status, body)
	if re.ErrorCode != "" {
		msg = fmt.Sprintf("%s (errorCode %s): answer %.120q", rep.Resp.Status, re.ErrorCode, body)
	}
	return &lphttp.RetrieveFailure{Msg: msg, RE: re}
}

// redactor withholds what an answer echoes of the AppJWTs the fetch sent.
func (l *sentLog) redactor() redact.Redactor {
	window := redact.EchoWindow(l.id)
	for _, t := range l.tokens {
		window = max(window, redact.EchoWindow(t))
	}
	return redact.Redactor{Leaks: l.echoed, Window: window, Withheld: withheldText}
}

// withhold replaces an error whose text echoes an AppJWT the fetch sent,
// such as net/http quoting a malformed status line; only a context error
// in it stays reachable.
func (l *sentLog) withhold(err error) error {
	return l.redactor().Withhold(err, "request failed; error text withheld: it echoed the request")
}

// echoed reports whether text holds what the fetch sent that no error may
// show: an AppJWT's signature, without which the rest of a JWT is no
// credential (or the whole token if it is no JWT), or the ext_consumer_id,
// if it is long enough not to match by chance.
func (l *sentLog) echoed(text string) bool {
	if len(l.id) >= minEchoedID && redact.Echoes(text, l.id) {
		return true
	}
	for _, t := range l.tokens {
		t = strings.TrimPrefix(t, "Bearer ")
		if i := strings.LastIndexByte(t, '.'); i >= 0 && len(t)-i-1 >= minSignature {
			t = t[i+1:]
		}
		if redact.Echoes(text, t) {
			return true
		}
	}
	return false
}

// minEchoedID is the shortest ext_consumer_id looked for in error texts:
// shorter ones would match by chance, and name no one.
const minEchoedID = 4

// minSignature is the shortest JWT signature looked for alone: shorter
// ones would match by chance.
const minSignature = 16
