package appjwttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lpconnect/appjwt/secret"
	"github.com/lpconnect/appjwt/webhook"
)

// Webhook is one entry of an app installation's capabilities.webhooks,
// whose key is the event type: where LivePerson delivers the
// notifications of that type, and how often it retries one. It decodes
// from the installation's JSON,
//
//	{"endpoint":"https://connector.example/lp/events","max_retries":3}
type Webhook struct {
	// Endpoint is an https URL without user information; LivePerson
	// delivers over TLS only.
	Endpoint string `json:"endpoint"`
	// MaxRetries is how many times a failed delivery is tried again, from
	// 0 to 5 (LivePerson's largest), under the count-based policy; the TTL-based
	// one ([Server.WebhookRetention]) does not use it.
	MaxRetries int `json:"max_retries"`
}

// The event types a [Webhook] is registered for, the keys of
// capabilities.webhooks.
const (
	WebhookContentEvent       = "ms.MessagingEventNotification.ContentEvent"
	WebhookRichContentEvent   = "ms.MessagingEventNotification.RichContentEvent"
	WebhookAcceptStatusEvent  = "ms.MessagingEventNotification.AcceptStatusEvent"
	WebhookChatStateEvent     = "ms.MessagingEventNotification.ChatStateEvent"
	WebhookConversationChange = "cqm.ExConversationChangeNotification"
)

// webhookTypes are the event types LivePerson documents a webhook for.
var webhookTypes = []string{
	WebhookContentEvent, WebhookRichContentEvent, WebhookAcceptStatusEvent,
	WebhookChatStateEvent, WebhookConversationChange,
}

// Bounds and defaults of webhook deliveries, as LivePerson documents them.
const (
	maxWebhookRetries = 5 // the largest max_retries LivePerson takes

	defaultWebhookRetryPause     = 30 * time.Second // between a failed attempt and the next
	defaultWebhookConnectTimeout = 5 * time.Second  // to connect, TLS included
	defaultWebhookReadTimeout    = 5 * time.Second  // to read the answer, once connected

	defaultWebhookFirstBackoff = 2 * time.Second // the TTL-based policy's first pause
	defaultWebhookMaxBackoff   = 5 * time.Minute // the TTL-based policy's longest pause

	defaultWebhookSlowAnswer = 2500 * time.Millisecond // an answer slower than this is slow
	defaultWebhookSlowWindow = 2 * time.Minute         // slow answers for this long disable the app
)

// The bounds of Server.WebhookRetention, LivePerson's retention_time.
const (
	minWebhookRetention = 2 * time.Second
	maxWebhookRetention = 259200 * time.Second
)

// Bounds of what the server keeps and sends for a test.
const (
	maxWebhookAnswer = 64 << 10 // the bytes of an answer kept in an Attempt
	maxOversize      = 64 << 20 // the largest body a WebhookFault.Oversize pads to
)

// WebhookTiming paces deliveries, and says when the server disables the
// app, as [Server.WebhookTiming]. Its fields that are zero or negative
// mean LivePerson's values: a 30 s pause before a retry (2 s doubling up
// to 5 minutes under the TTL-based policy), 5 s to connect, 5 s to read
// the answer, and the app disabled after answers slower than 2.5 s for 2
// minutes.
type WebhookTiming struct {
	// RetryPause is how long a delivery that failed waits before it is
	// queued again, under the count-based policy.
	RetryPause time.Duration
	// FirstBackoff and MaxBackoff pace the retries of the TTL-based
	// policy ([Server.WebhookRetention]): the first waits FirstBackoff,
	// each next one twice as long as the one before, MaxBackoff at most.
	FirstBackoff time.Duration
	MaxBackoff   time.Duration
	// ConnectTimeout bounds an attempt from its start until a connection
	// is ready, its TLS handshake done.
	ConnectTimeout time.Duration
	// ReadTimeout bounds an attempt from the connection being ready until
	// the answer, status and body, is read.
	ReadTimeout time.Duration
	// SlowAnswer and SlowWindow say when the server disables the app, as
	// LivePerson says it may "without prior warning": when every attempt
	// to one of its endpoints took longer than SlowAnswer for SlowWindow.
	// [Server.WebhooksDisabled] tells why.
	SlowAnswer time.Duration
	SlowWindow time.Duration
}

// WebhookFault is a fault the server puts in one notification it
// delivers: [Server.QueueWebhookFaults] queues them. Its fields combine.
// Every attempt of a faulty delivery sends the same bytes, as LivePerson's
// retries do.
type WebhookFault struct {
	// Duplicate delivers the notification twice, as LivePerson says it
	// may: two deliveries, the second queued right behind the first, each
	// with its own retries. Delivery records both.
	Duplicate bool
	// Reorder holds the notification back until the webhook's next
	// notification is queued, and queues it behind that one; with no next
	// one within the retry pause, it is queued then.
	Reorder bool
	// BadSignature signs the notification with a secret other than the
	// client secret, as a forger would.
	BadSignature bool
	// Oversize, if larger than the notification, pads it with spaces after
	// the JSON to this many bytes, at most 64 MiB, signed as padded: a body
	// that only a size cap refuses.
	Oversize int
}

// Delivery is a notification the server delivered to a webhook, or is
// delivering. [Server.Deliveries] returns copies.
type Delivery struct {
	Webhook  string       // its event type, such as WebhookContentEvent
	Endpoint string       // the webhook's endpoint when it was queued
	Header   http.Header  // what every attempt sends: Content-Type and LivePerson's three headers
	Body     []byte       // the notification, as every attempt sends it
	Fault    WebhookFault // the fault it carries; a Duplicate's second delivery carries the same
	Attempts []Attempt    // oldest first: the first attempt, then the retries
}

// Delivered reports whether an attempt was answered 200 or 201, which
// LivePerson counts as delivered.
func (d Delivery) Delivered() bool {
	return slices.ContainsFunc(d.Attempts, Attempt.ok)
}

// Attempt is one POST of a delivery.
type Attempt struct {
	Status   int           // the answer's status; 0 if none came
	Answer   []byte        // the answer's body, up to its first 64 KiB
	Err      error         // why the attempt failed without an answer read in time; nil otherwise
	Duration time.Duration // from the attempt's start until its answer was read, or it failed
}

// ok reports whether LivePerson would count a as delivered.
func (a Attempt) ok() bool {
	return a.Err == nil && (a.Status == http.StatusOK || a.Status == http.StatusCreated)
}

// Errors an [Attempt] may wrap.
var (
	errConnectTimeout = errors.New("appjwttest: webhook delivery: no connection within the connect timeout")
	errReadTimeout    = errors.New("appjwttest: webhook delivery: no answer within the read timeout")
)

// errServerClosed ends the attempts and pauses of a closed server.
var errServerClosed = errors.New("appjwttest: webhook delivery: server closed")

// SetWebhooks replaces the app installation's capabilities.webhooks: from
// now on, the notifications of each event type in hooks go to its
// endpoint; nil removes them all. It returns an error, and changes
// nothing, for an event type LivePerson does not document, an endpoint
// that is not an https URL or carries user information, or max_retries
// outside 0 to 5. Deliveries already queued keep the registration they
// were queued under.
func (s *Server) SetWebhooks(hooks map[string]Webhook) error {
	for _, typ := range slices.Sorted(maps.Keys(hooks)) {
		if err := checkWebhook(typ, hooks[typ]); err != nil {
			return err
		}
	}
	w := s.hooks
	w.mu.Lock()
	defer w.mu.Unlock()
	w.registered = maps.Clone(hooks)
	return nil
}

// checkWebhook checks one entry of capabilities.webhooks.
func checkWebhook(typ string, h Webhook) error {
	if !slices.Contains(webhookTypes, typ) {
		return fmt.Errorf("appjwttest: webhook %q: not an event type LivePerson delivers", typ)
	}
	u, err := url.Parse(h.Endpoint)
	switch {
	case err != nil || u.Scheme != "https" || u.Host == "":
		return fmt.Errorf("appjwttest: webhook %s: endpoint is not an https URL", typ)
	case u.User != nil:
		return fmt.Errorf("appjwttest: webhook %s: endpoint carries user information", typ)
	case h.MaxRetries < 0 || h.MaxRetries > maxWebhookRetries:
		return fmt.Errorf("appjwttest: webhook %s: max_retries %d is not between 0 and %d", typ, h.MaxRetries, maxWebhookRetries)
	}
	return nil
}

// orDefault returns d if it is positive, else def.
func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// QueueWebhookFaults makes the next len(faults) notifications of the
// webhook of event type typ carry a fault each, in order.
func (s *Server) QueueWebhookFaults(typ string, faults ...WebhookFault) {
	w := s.hooks
	w.mu.Lock()
	defer w.mu.Unlock()
	w.faults[typ] = append(w.faults[typ], faults...)
}

// Deliveries returns the deliveries queued so far, in the order they were
// queued (a Reorder fault holds one back: the endpoint gets them in another
// order), with the
// attempts made so far. The server keeps them for as long as it runs.
func (s *Server) Deliveries() []Delivery {
	w := s.hooks
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Delivery, len(w.deliveries))
	for i, d := range w.deliveries {
		out[i] = d.snapshot()
	}
	return out
}

// WaitWebhooks waits until no delivery is pending: queued, being
// attempted, waiting to be retried or held back by a Reorder fault. It
// returns an error wrapping ctx's if ctx ends first, and nil once the
// server is closed.
func (s *Server) WaitWebhooks(ctx context.Context) error {
	w := s.hooks
	w.mu.Lock()
	idle := w.idle
	w.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("appjwttest: waiting for webhook deliveries: %w", context.Cause(ctx))
	}
}

// webhooks delivers notifications to the webhooks registered. Each
// webhook's deliveries are attempted one at a time, in the order queued,
// by a goroutine that runs while some are queued; a failed delivery waits
// for its retry in a goroutine of its own, and is queued again behind
// what came meanwhile, as does one a Reorder fault holds back. So the
// goroutines are at most one per webhook (five) and one per delivery
// waiting; each is counted in wg, and ends when ctx does.
type webhooks struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	defaultClient *http.Client

	mu         sync.Mutex
	closed     bool
	registered map[string]Webhook
	client     *http.Client         // these three are fixed at Start
	timing     WebhookTiming        // its defaults filled in
	retention  time.Duration        // 0: the count-based policy
	slowSince  map[string]time.Time // per endpoint: when the attempts to it started to be slow
	disabled   error                // why the app is disabled; nil while it is not
	faults     map[string][]WebhookFault
	queues     map[string]*hookQueue
	deliveries []*delivery
	pending    int           // deliveries not done
	idle       chan struct{} // closed while pending is 0
}

// hookQueue is the queue of one webhook's deliveries.
type hookQueue struct {
	queued   []*delivery
	held     []*delivery // by Reorder faults, until the next one comes
	draining bool        // a goroutine attempts the queued deliveries
	convs    map[string]*convQueue
}

// convQueue keeps the order of one conversation's deliveries under the
// TTL-based policy: one of them is admitted to the webhook's queue at a
// time, until one fails and is then done, which starts the drain period:
// the ones held behind it, and those that come while any of these is not
// done, are admitted at once, and a failed one is retried behind what
// came meanwhile.
type convQueue struct {
	busy  bool        // one delivery is admitted and not done
	held  []*delivery // behind it, oldest first
	drain int         // deliveries of the drain period not done
}

// delivery is the server's record of a Delivery.
type delivery struct {
	Delivery
	conv       string    // its conversation
	queuedAt   time.Time // when it was queued: the TTL-based policy's retention counts from then
	maxRetries int
	draining   bool // admitted in its conversation's drain period
	done       bool
}

// configureWebhooks sets the deliveries up as the Server's fields say, or
// returns an error if WebhookRetention is out of bounds. Start calls it.
func (s *Server) configureWebhooks() error {
	if r := s.WebhookRetention; r != 0 && (r < minWebhookRetention || r > maxWebhookRetention) {
		return fmt.Errorf("appjwttest: WebhookRetention %v is not between %v and %v", r, minWebhookRetention, maxWebhookRetention)
	}
	t := s.WebhookTiming
	t.RetryPause = orDefault(t.RetryPause, defaultWebhookRetryPause)
	t.FirstBackoff = orDefault(t.FirstBackoff, defaultWebhookFirstBackoff)
	t.MaxBackoff = orDefault(t.MaxBackoff, defaultWebhookMaxBackoff)
	t.ConnectTimeout = orDefault(t.ConnectTimeout, defaultWebhookConnectTimeout)
	t.ReadTimeout = orDefault(t.ReadTimeout, defaultWebhookReadTimeout)
	t.SlowAnswer = orDefault(t.SlowAnswer, defaultWebhookSlowAnswer)
	t.SlowWindow = orDefault(t.SlowWindow, defaultWebhookSlowWindow)
	w := s.hooks
	w.mu.Lock()
	defer w.mu.Unlock()
	w.retention, w.timing = s.WebhookRetention, t
	if c := s.WebhookClient; c != nil {
		cc := *c
		cc.CheckRedirect = noRedirect
		w.client = &cc
	}
	return nil
}

// WebhooksDisabled returns why the server has disabled the app, nil if it
// has not: its endpoint answered slower than [WebhookTiming.SlowAnswer]
// for [WebhookTiming.SlowWindow]. From then on no notification is delivered: those
// pending are dropped, and new ones are not queued.
func (s *Server) WebhooksDisabled() error {
	w := s.hooks
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.disabled
}

func (d *delivery) snapshot() Delivery {
	out := d.Delivery
	out.Header = d.Header.Clone()
	out.Body = slices.Clone(d.Body)
	out.Attempts = slices.Clone(d.Attempts)
	for i := range out.Attempts {
		out.Attempts[i].Answer = slices.Clone(out.Attempts[i].Answer)
	}
	return out
}

func newWebhooks() *webhooks {
	ctx, cancel := context.WithCancelCause(context.Background())
	idle := make(chan struct{})
	close(idle)
	// No proxy: the test machine's are not LivePerson's.
	def := &http.Client{
		Transport:     &http.Transport{ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 8, IdleConnTimeout: 90 * time.Second},
		CheckRedirect: noRedirect,
	}
	return &webhooks{
		ctx:           ctx,
		cancel:        cancel,
		defaultClient: def,
		client:        def,
		slowSince:     map[string]time.Time{},
		faults:        map[string][]WebhookFault{},
		queues:        map[string]*hookQueue{},
		idle:          idle,
	}
}

// close stops every delivery and waits for the goroutines to end.
// Deliveries not done stay as they are.
func (w *webhooks) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.closed = true
	if w.pending > 0 {
		w.pending = 0
		close(w.idle)
	}
	client := w.client
	w.mu.Unlock()
	w.cancel(errServerClosed)
	w.wg.Wait()
	client.CloseIdleConnections()
	w.defaultClient.CloseIdleConnections()
}

// deliver queues a notification of conversation conv for the webhook of
// event type typ, if one is registered, signed for the app installation.
func (w *webhooks) deliver(typ, conv string, body []byte, account, clientID string, clientSecret secret.String) {
	w.mu.Lock()
	defer w.mu.Unlock()
	hook, ok := w.registered[typ]
	if !ok || w.closed || w.disabled != nil {
		return
	}
	var f WebhookFault
	if q := w.faults[typ]; len(q) > 0 {
		f, w.faults[typ] = q[0], q[1:]
	}
	if n := min(f.Oversize, maxOversize); n > len(body) {
		body = append(body, bytes.Repeat([]byte(" "), n-len(body))...)
	}
	if f.BadSignature {
		clientSecret = secret.String(randomString())
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set(webhook.HeaderAccountID, account)
	h.Set(webhook.HeaderClientID, clientID)
	h.Set(webhook.HeaderSignature, webhook.Sign(clientSecret, body))
	now := time.Now()
	ds := []*delivery{{Delivery: Delivery{Webhook: typ, Endpoint: hook.Endpoint, Header: h, Body: body, Fault: f}, conv: conv, queuedAt: now, maxRetries: hook.MaxRetries}}
	if f.Duplicate {
		ds = append(ds, &delivery{Delivery: ds[0].snapshot(), conv: conv, queuedAt: now, maxRetries: hook.MaxRetries})
	}
	for _, d := range ds {
		w.deliveries = append(w.deliveries, d)
		w.startLocked()
	}
	q := w.queues[typ]
	if q == nil {
		q = &hookQueue{convs: map[string]*convQueue{}}
		w.queues[typ] = q
	}
	if f.Reorder {
		q.held = append(q.held, ds...)
		pause := w.timing.RetryPause
		w.wg.Go(func() {
			if w.sleep(pause) {
				w.release(q, ds)
			}
		})
		return
	}
	for _, d := range append(ds, q.held...) {
		w.admitLocked(q, d)
	}
	q.held = nil
}

// release queues the deliveries of ds that q still holds back.
func (w *webhooks) release(q *hookQueue, ds []*delivery) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range ds {
		if i := slices.Index(q.held, d); i >= 0 && !w.closed {
			q.held = slices.Delete(q.held, i, i+1)
			w.admitLocked(q, d)
		}
	}
}

// startLocked counts a delivery as pending.
func (w *webhooks) startLocked() {
	if w.pending == 0 {
		w.idle = make(chan struct{})
	}
	w.pending++
}

// finishLocked counts a delivery as done.
func (w *webhooks) finishLocked(d *delivery) {
	if d.done || w.closed {
		return
	}
	d.done = true
	if w.pending--; w.pending == 0 {
		close(w.idle)
	}
}

// enqueueLocked queues ds on q and has them attempted. The caller holds
// w.mu, and w is not closed.
func (w *webhooks) enqueueLocked(q *hookQueue, ds ...*delivery) {
	q.queued = append(q.queued, ds...)
	if !q.draining && len(q.queued) > 0 {
		q.draining = true
		w.wg.Go(func() { w.drain(q) })
	}
}

// admitLocked queues d on q, unless the TTL-based policy holds it behind
// a delivery of its conversation. The caller holds w.mu, and w is not
// closed.
func (w *webhooks) admitLocked(q *hookQueue, d *delivery) {
	if w.retention == 0 {
		w.enqueueLocked(q, d)
		return
	}
	c := q.convs[d.conv]
	if c == nil {
		c = &convQueue{}
		q.convs[d.conv] = c
	}
	switch {
	case c.drain > 0:
		c.drain++
		d.draining = true
	case c.busy:
		c.held = append(c.held, d)
		return
	default:
		c.busy = true
	}
	w.enqueueLocked(q, d)
}

// doneLocked counts d as done, and admits what its conversation held
// behind it: the next one, or, if d had failed, all of them, which starts
// the drain period. The caller holds w.mu.
func (w *webhooks) doneLocked(q *hookQueue, d *delivery) {
	w.finishLocked(d)
	c := q.convs[d.conv]
	if w.retention == 0 || c == nil || w.closed {
		return
	}
	if d.draining {
		c.drain--
	} else {
		c.busy = false
	}
	switch {
	case c.drain > 0 || c.busy:
	case len(c.held) == 0:
		delete(q.convs, d.conv)
	case len(d.Attempts) > 1 || !d.Delivered() && !d.draining:
		held := c.held
		c.held, c.drain = nil, len(held)
		for _, h := range held {
			h.draining = true
		}
		w.enqueueLocked(q, held...)
	default:
		next := c.held[0]
		c.held, c.busy = c.held[1:], true
		w.enqueueLocked(q, next)
	}
}

// drain attempts q's deliveries, one at a time, until none is queued.
func (w *webhooks) drain(q *hookQueue) {
	for {
		w.mu.Lock()
		if w.closed || len(q.queued) == 0 {
			q.draining = false
			w.mu.Unlock()
			return
		}
		d := q.queued[0]
		q.queued = q.queued[1:]
		if d.done || w.expiredLocked(d, 0) { // dropped by a disabled app, or older than the retention
			w.doneLocked(q, d)
			w.mu.Unlock()
			continue
		}
		client, timing := w.client, w.timing
		w.mu.Unlock()

		a := w.attempt(client, timing, d)

		w.mu.Lock()
		d.Attempts = append(d.Attempts, a)
		w.watchSlowLocked(d, a)
		switch pause := w.retryPauseLocked(d, timing); {
		case w.closed || d.done: // the app was disabled meanwhile
		case a.ok() || pause < 0:
			w.doneLocked(q, d)
		default:
			w.wg.Go(func() {
				if w.sleep(pause) {
					w.requeue(q, d)
				}
			})
		}
		w.mu.Unlock()
	}
}

// retryPauseLocked returns how long d waits before its next attempt, or
// -1 if it has none left. The caller holds w.mu.
func (w *webhooks) retryPauseLocked(d *delivery, t WebhookTiming) time.Duration {
	n := len(d.Attempts)
	if w.retention == 0 {
		if n <= d.maxRetries {
			return t.RetryPause
		}
		return -1
	}
	pause := t.FirstBackoff
	for i := 1; i < n && pause < t.MaxBackoff; i++ {
		pause *= 2
	}
	pause = min(pause, t.MaxBackoff)
	if w.expiredLocked(d, pause) {
		return -1
	}
	return pause
}

// expiredLocked reports whether d, under the TTL-based policy, is as old
// as the retention after the pause. The caller holds w.mu.
func (w *webhooks) expiredLocked(d *delivery, pause time.Duration) bool {
	return w.retention > 0 && time.Since(d.queuedAt)+pause >= w.retention
}

// watchSlowLocked notes how fast d's endpoint gave answer a, and disables
// the app if it has been slow for the window. The caller holds w.mu.
func (w *webhooks) watchSlowLocked(d *delivery, a Attempt) {
	if a.Duration <= w.timing.SlowAnswer {
		delete(w.slowSince, d.Endpoint)
		return
	}
	now := time.Now()
	since, ok := w.slowSince[d.Endpoint]
	if !ok {
		since = now.Add(-a.Duration)
		w.slowSince[d.Endpoint] = since
	}
	if w.disabled != nil || now.Sub(since) < w.timing.SlowWindow {
		return
	}
	w.disabled = fmt.Errorf("appjwttest: webhooks disabled: the endpoint of %s answered slower than %v for %v", d.Webhook, w.timing.SlowAnswer, now.Sub(since))
	for _, d := range w.deliveries {
		w.finishLocked(d)
	}
}

// requeue queues d again for its retry.
func (w *webhooks) requeue(q *hookQueue, d *delivery) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed && !d.done {
		w.enqueueLocked(q, d)
	}
}

// sleep waits d and reports true, or false if the server closes first.
func (w *webhooks) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.ctx.Done():
		return false
	}
}

// attempt POSTs d once, within the timeouts of t.
func (w *webhooks) attempt(client *http.Client, t WebhookTiming, d *delivery) Attempt {
	ctx, cancel := context.WithCancelCause(w.ctx)
	defer cancel(nil)
	// One timer: the connect timeout until a connection is ready, then the
	// read timeout.
	var connected, answered, unanswered atomic.Bool
	timer := time.AfterFunc(t.ConnectTimeout, func() {
		switch {
		case !connected.Load():
			cancel(errConnectTimeout)
		default:
			// An answer whose headers come as the timer fires may still
			// reach the caller: it came too late, and counts as none.
			unanswered.Store(!answered.Load())
			cancel(errReadTimeout)
		}
	})
	defer timer.Stop()
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) {
			connected.Store(true)
			timer.Reset(t.ReadTimeout)
		},
		GotFirstResponseByte: func() { answered.Store(true) },
	})

	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Endpoint, bytes.NewReader(d.Body))
	if err != nil {
		return Attempt{Err: fmt.Errorf("appjwttest: webhook delivery: %w", err)}
	}
	req.Header = d.Header.Clone()
	resp, err := client.Do(req)
	if err != nil {
		return Attempt{Err: attemptError(ctx, err), Duration: time.Since(start)}
	}
	defer resp.Body.Close()
	if unanswered.Load() {
		return Attempt{Err: errReadTimeout, Duration: time.Since(start)}
	}
	a := Attempt{Status: resp.StatusCode}
	a.Answer, err = io.ReadAll(io.LimitReader(resp.Body, maxWebhookAnswer))
	switch cause := context.Cause(ctx); {
	case cause != nil:
		// Canceled while reading: the body may still end cleanly, if
		// the endpoint ended it as the connection closed, but too late.
		a.Err = cause
	case err != nil:
		a.Err = fmt.Errorf("appjwttest: webhook delivery: %w", err)
	}
	a.Duration = time.Since(start)
	return a
}

// attemptError is the error of an attempt that failed with err: the
// timeout or the server's closing that ended it, or err.
func attemptError(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	return fmt.Errorf("appjwttest: webhook delivery: %w", err)
}

// noRedirect makes a client return a redirect as the answer.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
