package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"net/url"
	"strconv"
	"time"
)

// smtpServer is where mail goes, from TOPUP_SMTP_URL.
type smtpServer struct {
	host, port     string
	user, password string
	implicitTLS    bool // smtps://
	from           string
}

// ParseSMTPURL reads TOPUP_SMTP_URL: smtp://[user:pass@]host[:port]
// (default port 587, STARTTLS whenever the server offers it) or smtps://…
// (TLS from the start, default port 465), with an optional ?from=address
// (default topup@host).
func ParseSMTPURL(raw string) (smtpServer, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return smtpServer{}, fmt.Errorf("TOPUP_SMTP_URL: %w", err)
	}
	s := smtpServer{host: u.Hostname(), port: u.Port()}
	switch u.Scheme {
	case "smtp":
		if s.port == "" {
			s.port = "587"
		}
	case "smtps":
		s.implicitTLS = true
		if s.port == "" {
			s.port = "465"
		}
	default:
		return s, fmt.Errorf("TOPUP_SMTP_URL must be smtp://user:pass@host:port or smtps://…, not %q", u.Scheme+"://…")
	}
	if s.host == "" {
		return s, errors.New("TOPUP_SMTP_URL names no host")
	}
	if u.User != nil {
		s.user = u.User.Username()
		s.password, _ = u.User.Password()
	}
	s.from = u.Query().Get("from")
	if s.from == "" {
		s.from = "topup@" + s.host
	}
	if a, err := mail.ParseAddress(s.from); err != nil {
		return s, fmt.Errorf("TOPUP_SMTP_URL: from=%q is not an e-mail address", s.from)
	} else {
		s.from = a.Address
	}
	return s, nil
}

// sendMail sends the event to the account's e-mail address, or only
// records it (a log line) when no SMTP server is configured. permanent is
// true when the server refused for good (a 5xx reply): retrying cannot help.
func (w *Worker) sendMail(ctx context.Context, d Delivery, log *slog.Logger) (permanent bool, err error) {
	m := render(d.Event, w.cfg.ConsoleURL)
	if w.smtp == nil {
		log.Info("mail recorded (no TOPUP_SMTP_URL)", "to", d.To, "subject", m.subject)
		return false, nil
	}
	if d.To == "" {
		return true, errors.New("the account has no e-mail address")
	}
	msg, err := message(w.smtp.from, d.To, d.Event, m, w.cfg.Clock.Now())
	if err != nil {
		return true, err
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.MailTimeout)
	defer cancel()
	err = w.smtp.send(ctx, w.cfg.SMTPTLS, d.To, msg)
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return true, err
	}
	return false, err
}

// send holds one SMTP conversation within ctx's deadline: TLS from the
// start (smtps) or STARTTLS when offered, AUTH PLAIN when a user is set
// (net/smtp sends it only over TLS or to localhost), then the message.
func (s *smtpServer) send(ctx context.Context, tlsCfg *tls.Config, to string, msg []byte) error {
	addr := net.JoinHostPort(s.host, s.port)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	cfg := &tls.Config{ServerName: s.host, MinVersion: tls.VersionTLS12}
	if tlsCfg != nil {
		cfg = tlsCfg.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = s.host
		}
	}
	if s.implicitTLS {
		conn = tls.Client(conn, cfg)
	}
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello("localhost"); err != nil {
		return err
	}
	if ok, _ := c.Extension("STARTTLS"); ok && !s.implicitTLS {
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	}
	if s.user != "" {
		if ok, _ := c.Extension("AUTH"); !ok {
			return errors.New("the mail server offers no AUTH, but TOPUP_SMTP_URL has a user")
		}
		if err := c.Auth(smtp.PlainAuth("", s.user, s.password, s.host)); err != nil {
			return err
		}
	}
	if err := c.Mail(s.from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	wc, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := wc.Write(msg); err != nil {
		return err
	}
	if err := wc.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// message builds the mail: multipart/alternative with a plain text and an
// HTML part, both quoted-printable UTF-8; its Message-ID is the event's.
func message(from, to string, ev Event, m mailText, now time.Time) ([]byte, error) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, part := range []struct{ typ, content string }{{"text/plain", m.text}, {"text/html", m.html}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, err
		}
		qw := quotedprintable.NewWriter(pw)
		if _, err := qw.Write([]byte(part.content)); err != nil {
			return nil, err
		}
		if err := qw.Close(); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	hdr := func(k, v string) { out.WriteString(k + ": " + v + "\r\n") }
	hdr("From", (&mail.Address{Name: "Topup", Address: from}).String())
	hdr("To", (&mail.Address{Address: to}).String())
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.subject))
	hdr("Date", now.UTC().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+ev.ID+"@topup>")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", "multipart/alternative; boundary="+strconv.Quote(mw.Boundary()))
	hdr("X-Topup-Event-Type", ev.Type)
	out.WriteString("\r\n")
	out.Write(body.Bytes())
	return out.Bytes(), nil
}
