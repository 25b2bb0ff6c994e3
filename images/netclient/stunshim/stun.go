// Package stun maps the gortc.io/stun names netclient uses onto github.com/pion/stun.
package stun

import (
	"net"

	pion "github.com/pion/stun"
)

type (
	Event            = pion.Event
	Client           = pion.Client
	Message          = pion.Message
	XORMappedAddress = pion.XORMappedAddress
)

var (
	TransactionID  = pion.TransactionID
	BindingRequest = pion.BindingRequest
)

// NewClient wraps pion.NewClient; netclient passes a plain net.Conn.
func NewClient(conn net.Conn) (*Client, error) { return pion.NewClient(conn) }

// MustBuild wraps pion.MustBuild.
func MustBuild(setters ...pion.Setter) *Message { return pion.MustBuild(setters...) }
