package jobmaker

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/address/v2"
	"github.com/btcsuite/btcd/chaincfg/v2"
)

func TestOptionsDefaults(t *testing.T) {
	o := Options{ID: 1, PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"}.WithDefaults()
	if o.JobInterval != 20*time.Second || o.GbtLifeTime != 90*time.Second || o.EmptyGbtLifeTime != 15*time.Second ||
		o.RawGbtTopic != "BtcRawGbt" || o.JobTopic != "BtcJob" || o.Network != "mainnet" || o.BlockVersion != 0 ||
		o.Logger == nil || o.Now == nil {
		t.Errorf("defaults: %+v", o)
	}
	if err := o.Validate(); err != nil {
		t.Error(err)
	}
}

func TestOptionsValidateReportsEverything(t *testing.T) {
	o := Options{
		ID: 256, Network: "mainnet", PayoutAddress: "tb1qw508d6qejxtdg4c3zdrsgq7a6nrsymhzuekmu7",
		CoinbaseInfo: strings.Repeat("x", MaxCoinbaseInfo+1), JobInterval: 1500 * time.Millisecond,
		GbtLifeTime: -time.Second, EmptyGbtLifeTime: 48 * time.Hour, RawGbtTopic: "", JobTopic: "",
	}
	err := o.Validate()
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, want := range []string{"id 256", "payout address", "coinbase_info", "job_interval", "gbt_life_time",
		"empty_gbt_life_time", "rawgbt_topic", "job_topic"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
	for _, bad := range []Options{
		{ID: 0, PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"},
		{ID: 1, Network: "testnet", PayoutAddress: "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"},
		{ID: 1},
	} {
		if bad.WithDefaults().Validate() == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func TestPayoutScript(t *testing.T) {
	hash20 := bytes.Repeat([]byte{0x11}, 20)
	hash32 := bytes.Repeat([]byte{0x22}, 32)
	for _, tc := range []struct {
		network string
		params  *chaincfg.Params
	}{
		{"mainnet", &chaincfg.MainNetParams},
		{"testnet3", &chaincfg.TestNet3Params},
		{"testnet4", &chaincfg.TestNet4Params},
		{"signet", &chaincfg.SigNetParams},
		{"regtest", &chaincfg.RegressionNetParams},
	} {
		pkh, _ := address.NewAddressPubKeyHash(hash20, tc.params)
		sh, _ := address.NewAddressScriptHashFromHash(hash20, tc.params)
		wpkh, _ := address.NewAddressWitnessPubKeyHash(hash20, tc.params)
		wsh, _ := address.NewAddressWitnessScriptHash(hash32, tc.params)
		tr, _ := address.NewAddressTaproot(hash32, tc.params)
		for _, c := range []struct {
			addr address.Address
			want []byte
		}{
			{pkh, append(append([]byte{0x76, 0xa9, 0x14}, hash20...), 0x88, 0xac)},
			{sh, append(append([]byte{0xa9, 0x14}, hash20...), 0x87)},
			{wpkh, append([]byte{0x00, 0x14}, hash20...)},
			{wsh, append([]byte{0x00, 0x20}, hash32...)},
			{tr, append([]byte{0x51, 0x20}, hash32...)},
		} {
			got, err := PayoutScript(tc.network, c.addr.EncodeAddress())
			if err != nil || !bytes.Equal(got, c.want) {
				t.Errorf("%s %s: %x, %v; want %x", tc.network, c.addr.EncodeAddress(), got, err, c.want)
			}
		}
	}
	// The genesis block's address.
	got, err := PayoutScript("mainnet", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa")
	if err != nil || !bytes.Equal(got, mustHex(t, genesisP2PKH)) {
		t.Errorf("genesis address: %x, %v", got, err)
	}
	// Wrong network, garbage.
	rt, _ := address.NewAddressWitnessPubKeyHash(hash20, &chaincfg.RegressionNetParams)
	tb, _ := address.NewAddressWitnessPubKeyHash(hash20, &chaincfg.TestNet3Params)
	for _, c := range []struct{ network, addr string }{
		{"regtest", "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"},
		{"mainnet", rt.EncodeAddress()},
		{"regtest", tb.EncodeAddress()},
		{"mainnet", tb.EncodeAddress()},
		{"mainnet", "not an address"},
		{"mainnet", ""},
	} {
		if s, err := PayoutScript(c.network, c.addr); err == nil {
			t.Errorf("%s %q accepted: %x", c.network, c.addr, s)
		}
	}
}
