package noise

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashpool/hashpool/codec/sv2"
)

// ConnOptions bounds a Conn.
type ConnOptions struct {
	// HandshakeTimeout bounds the whole handshake (default 10s).
	HandshakeTimeout time.Duration
	// MaxPayload bounds a received frame's plaintext payload (default
	// sv2.DefaultMaxPayload; at most sv2.MaxU24).
	MaxPayload int
	// ClockSkew widens the certificate's validity window on both sides
	// (initiator only; default DefaultClockSkew).
	ClockSkew time.Duration
	// Now returns the time certificates are checked at (default time.Now).
	Now func() time.Time
}

func (o *ConnOptions) setDefaults() {
	if o.HandshakeTimeout == 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.MaxPayload == 0 {
		o.MaxPayload = sv2.DefaultMaxPayload
	}
	if o.ClockSkew == 0 {
		o.ClockSkew = DefaultClockSkew
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Validate reports every problem with o (after defaults).
func (o ConnOptions) Validate() error {
	o.setDefaults()
	var errs []error
	if o.HandshakeTimeout < 0 {
		errs = append(errs, fmt.Errorf("noise: HandshakeTimeout %v is negative", o.HandshakeTimeout))
	}
	if o.MaxPayload < 0 || o.MaxPayload > sv2.MaxU24 {
		errs = append(errs, fmt.Errorf("noise: MaxPayload %d is outside 0..%d", o.MaxPayload, sv2.MaxU24))
	}
	if o.ClockSkew < 0 {
		errs = append(errs, fmt.Errorf("noise: ClockSkew %v is negative", o.ClockSkew))
	}
	return errors.Join(errs...)
}

// Conn is an encrypted Stratum V2 connection over a net.Conn. ReadFrame and
// WriteFrame may be called from one reader and one writer goroutine at the
// same time, not from two of either.
type Conn struct {
	c    net.Conn
	s    *Session
	max  int
	rbuf []byte
	wbuf []byte
	hdr  [HeaderCiphertextLen]byte
}

// Client runs the initiator's handshake on c, accepting only a server whose
// certificate the authority key signed, and returns the encrypted Conn. On
// error the caller closes c.
func Client(c net.Conn, authority [32]byte, o ConnOptions) (*Conn, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.setDefaults()
	i, err := NewInitiator(authority, nil, o.ClockSkew)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(o.HandshakeTimeout))
	act1, _ := i.WriteAct1(make([]byte, 0, Act1Len))
	if _, err := c.Write(act1); err != nil {
		return nil, err
	}
	act2 := make([]byte, Act2Len)
	if _, err := io.ReadFull(c, act2); err != nil {
		return nil, fmt.Errorf("noise: reading the server's handshake: %w", err)
	}
	s, err := i.ReadAct2(act2, o.Now())
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return &Conn{c: c, s: s, max: o.MaxPayload}, nil
}

// Server runs the responder's handshake on c and returns the encrypted Conn.
// On error the caller closes c.
func Server(c net.Conn, r *Responder, o ConnOptions) (*Conn, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.setDefaults()
	c.SetDeadline(time.Now().Add(o.HandshakeTimeout))
	act1 := make([]byte, Act1Len)
	if _, err := io.ReadFull(c, act1); err != nil {
		return nil, fmt.Errorf("noise: reading the client's handshake: %w", err)
	}
	act2, s, err := r.Respond(make([]byte, 0, Act2Len), act1)
	if err != nil {
		return nil, err
	}
	if _, err := c.Write(act2); err != nil {
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return &Conn{c: c, s: s, max: o.MaxPayload}, nil
}

// NetConn returns the underlying connection (for deadlines and Close).
func (c *Conn) NetConn() net.Conn { return c.c }

// Close closes the underlying connection.
func (c *Conn) Close() error { return c.c.Close() }

// ReadFrame reads and decrypts one frame. The payload aliases the Conn's
// buffer and is valid until the next ReadFrame. Any error but a timeout
// leaves the session unusable.
func (c *Conn) ReadFrame() (sv2.Header, []byte, error) {
	if _, err := io.ReadFull(c.c, c.hdr[:]); err != nil {
		return sv2.Header{}, nil, err
	}
	h, err := c.s.OpenHeader(c.hdr[:])
	if err != nil {
		return h, nil, err
	}
	if int(h.Length) > c.max {
		return h, nil, ErrFrameTooLarge
	}
	n := CiphertextLen(int(h.Length))
	if cap(c.rbuf) < n {
		c.rbuf = make([]byte, n)
	}
	ct := c.rbuf[:n]
	if _, err := io.ReadFull(c.c, ct); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return h, nil, err
	}
	p, err := c.s.OpenPayload(ct, int(h.Length))
	return h, p, err
}

// WriteFrame encrypts and writes one plaintext frame (as codec/sv2's Append
// functions produce).
func (c *Conn) WriteFrame(frame []byte) error {
	var err error
	if c.wbuf, err = c.s.Seal(c.wbuf[:0], frame); err != nil {
		return err
	}
	_, err = c.c.Write(c.wbuf)
	return err
}
