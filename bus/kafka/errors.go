package kafka

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hashpool/hashpool/bus"
)

// ErrNotAssigned is returned (wrapped) by Commit for records of a partition
// that a group rebalance has taken from this member, or not yet given back
// after the member rejoined. It is transient: a retried Commit succeeds once
// the member owns the partition again; if another member owns it, that member
// reads the records again from the group's last commit.
var ErrNotAssigned = errors.New("kafka: partition not assigned to this group member")

// permanentCodes are the broker errors that retrying cannot cure: the client
// or the cluster is configured wrongly (authorization, a session timeout the
// broker refuses, a record larger than the broker takes, an invalid name).
var permanentCodes = []error{
	kerr.TopicAuthorizationFailed,
	kerr.GroupAuthorizationFailed,
	kerr.ClusterAuthorizationFailed,
	kerr.TransactionalIDAuthorizationFailed,
	kerr.DelegationTokenAuthorizationFailed,
	kerr.SaslAuthenticationFailed,
	kerr.UnsupportedSaslMechanism,
	kerr.IllegalSaslState,
	kerr.InvalidSessionTimeout,
	kerr.InconsistentGroupProtocol,
	kerr.InvalidGroupID,
	kerr.GroupMaxSizeReached,
	kerr.FencedInstanceID,
	kerr.InvalidTopicException,
	kerr.UnsupportedVersion,
	kerr.UnsupportedForMessageFormat,
	kerr.UnsupportedCompressionType,
	kerr.MessageTooLarge,
	kerr.RecordListTooLarge,
	kerr.InvalidRequiredAcks,
	kerr.InvalidConfig,
	kerr.PolicyViolation,
}

// isPermanentKafka reports whether err wraps a broker error in permanentCodes.
func isPermanentKafka(err error) bool {
	for _, p := range permanentCodes {
		if errors.Is(err, p) {
			return true
		}
	}
	return false
}

// classify prefixes err with what, makes a closed client's error match
// bus.ErrClosed, and marks configuration errors with bus.Permanent. Every
// other error (timeouts, connection errors, rebalances, ILLEGAL_GENERATION,
// UNKNOWN_MEMBER_ID, NOT_COORDINATOR, ...) is left transient.
func classify(what string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(err, bus.ErrClosed):
		return err
	case errors.Is(err, kgo.ErrClientClosed):
		return fmt.Errorf("%w: %s: %w", bus.ErrClosed, what, err)
	case isPermanentKafka(err):
		return bus.Permanent(fmt.Errorf("%s: %w", what, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}
