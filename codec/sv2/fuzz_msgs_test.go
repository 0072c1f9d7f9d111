package sv2

import "testing"

// One fuzz target per decoder, each seeded with that message's samples;
// FuzzDecode covers them all at once, these let each get its own run.

func fuzzMessage(f *testing.F, typ uint8) {
	for _, s := range messageSamples {
		if s.typ == typ {
			f.Add(hx(s.frame)[HeaderLen:])
		}
	}
	f.Fuzz(func(t *testing.T, p []byte) { checkDecode(t, typ, p) })
}

func FuzzDecodeSetupConnection(f *testing.F) { fuzzMessage(f, MsgSetupConnection) }

func FuzzDecodeSetupConnectionSuccess(f *testing.F) { fuzzMessage(f, MsgSetupConnectionSuccess) }

func FuzzDecodeSetupConnectionError(f *testing.F) { fuzzMessage(f, MsgSetupConnectionError) }

func FuzzDecodeChannelEndpointChanged(f *testing.F) { fuzzMessage(f, MsgChannelEndpointChanged) }

func FuzzDecodeReconnect(f *testing.F) { fuzzMessage(f, MsgReconnect) }

func FuzzDecodeOpenStandardMiningChannel(f *testing.F) { fuzzMessage(f, MsgOpenStandardMiningChannel) }

func FuzzDecodeOpenStandardMiningChannelSuccess(f *testing.F) {
	fuzzMessage(f, MsgOpenStandardMiningChannelSuccess)
}

func FuzzDecodeOpenMiningChannelError(f *testing.F) { fuzzMessage(f, MsgOpenMiningChannelError) }

func FuzzDecodeOpenExtendedMiningChannel(f *testing.F) { fuzzMessage(f, MsgOpenExtendedMiningChannel) }

func FuzzDecodeOpenExtendedMiningChannelSuccess(f *testing.F) {
	fuzzMessage(f, MsgOpenExtendedMiningChannelSuccess)
}

func FuzzDecodeNewMiningJob(f *testing.F) { fuzzMessage(f, MsgNewMiningJob) }

func FuzzDecodeUpdateChannel(f *testing.F) { fuzzMessage(f, MsgUpdateChannel) }

func FuzzDecodeUpdateChannelError(f *testing.F) { fuzzMessage(f, MsgUpdateChannelError) }

func FuzzDecodeCloseChannel(f *testing.F) { fuzzMessage(f, MsgCloseChannel) }

func FuzzDecodeSetExtranoncePrefix(f *testing.F) { fuzzMessage(f, MsgSetExtranoncePrefix) }

func FuzzDecodeSubmitSharesStandard(f *testing.F) { fuzzMessage(f, MsgSubmitSharesStandard) }

func FuzzDecodeSubmitSharesExtended(f *testing.F) { fuzzMessage(f, MsgSubmitSharesExtended) }

func FuzzDecodeSubmitSharesSuccess(f *testing.F) { fuzzMessage(f, MsgSubmitSharesSuccess) }

func FuzzDecodeSubmitSharesError(f *testing.F) { fuzzMessage(f, MsgSubmitSharesError) }

func FuzzDecodeNewExtendedMiningJob(f *testing.F) { fuzzMessage(f, MsgNewExtendedMiningJob) }

func FuzzDecodeSetNewPrevHash(f *testing.F) { fuzzMessage(f, MsgSetNewPrevHash) }

func FuzzDecodeSetTarget(f *testing.F) { fuzzMessage(f, MsgSetTarget) }

func FuzzDecodeSetCustomMiningJob(f *testing.F) { fuzzMessage(f, MsgSetCustomMiningJob) }

func FuzzDecodeSetCustomMiningJobSuccess(f *testing.F) { fuzzMessage(f, MsgSetCustomMiningJobSuccess) }

func FuzzDecodeSetCustomMiningJobError(f *testing.F) { fuzzMessage(f, MsgSetCustomMiningJobError) }

func FuzzDecodeSetGroupChannel(f *testing.F) { fuzzMessage(f, MsgSetGroupChannel) }
