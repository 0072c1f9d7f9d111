package jobmaker

import (
	"bytes"
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcutil/v2"
	"github.com/btcsuite/btcd/chainhash/v2"
	"github.com/btcsuite/btcd/wire/v2"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hashpool/hashpool/bus"
	"github.com/hashpool/hashpool/bus/kafka"
	"github.com/hashpool/hashpool/bus/mem"
	"github.com/hashpool/hashpool/codec/btcpool"
	"github.com/hashpool/hashpool/internal/btcdtest"
	"github.com/hashpool/hashpool/jobs/fetchloop"
	"github.com/hashpool/hashpool/jobs/gbtmaker"
	"github.com/hashpool/hashpool/node"
	"github.com/hashpool/hashpool/sha"
)

// rawGbtReader reads the RawGbt topic beside the jobmaker and keeps every
// template by gbthash, so that a job can be completed into a block with
// its template's transactions (what blkmaker does).
type rawGbtReader struct {
	t    *testing.T
	cons bus.Consumer
	seen map[string]*node.Template
}

func newRawGbtReader(t *testing.T, b bus.Bus, topic string) *rawGbtReader {
	t.Helper()
	c, err := b.NewConsumer(topic, bus.Start{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawGbtReader{t: t, cons: c, seen: map[string]*node.Template{}}
}

// template returns the template whose gbthash is hash, reading the topic
// until it shows up.
func (r *rawGbtReader) template(hash string) *node.Template {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for r.seen[hash] == nil {
		msgs, err := r.cons.Poll(ctx)
		if err != nil {
			r.t.Fatalf("template %s not on the RawGbt topic: %v", hash, err)
		}
		for _, m := range msgs {
			var raw btcpool.RawGbt
			if err := btcpool.DecodeRawGbt(m.Value, &raw); err != nil {
				r.t.Fatalf("RawGbt: %v", err)
			}
			text, err := raw.Template()
			if err != nil {
				r.t.Fatal(err)
			}
			tmpl, err := node.ParseTemplate(text)
			if err != nil {
				r.t.Fatal(err)
			}
			r.seen[raw.GbtHash] = tmpl
		}
	}
	return r.seen[hash]
}

// jobAt reads jobs until one is for height h.
func jobAt(t *testing.T, jobs *jobReader, h int64) btcpool.StratumJob {
	t.Helper()
	for range 1000 {
		if j := jobs.next(30 * time.Second); int64(j.Height) == h {
			return j
		}
	}
	t.Fatalf("no job for height %d", h)
	return btcpool.StratumJob{}
}

// startGbtMaker runs the real gbtmaker against n until the test ends. It
// long-polls btcd and also fetches a template every second, so that a
// transaction added to the mempool reaches a template soon.
func startGbtMaker(t *testing.T, b bus.Bus, n *btcdtest.Node) {
	t.Helper()
	prod, err := b.NewProducer(bus.ProducerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gm, err := gbtmaker.New(gbtmaker.Options{Node: n.ClientOptions(), Timing: fetchloop.Timing{RPCInterval: time.Second,
		Tick: 100 * time.Millisecond}, RawGbtTopic: DefaultRawGbtTopic}, prod)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gm.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gbtmaker: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("gbtmaker did not stop")
		}
		prod.Close()
	})
}

// mineJob does what a miner and blkmaker do with a job: complete the
// coinbase with an extranonce, fold the merkle branch, grind the nonce
// against the job's target and submit the block with the template's
// transactions. It checks that the node took the block as its new tip.
func mineJob(t *testing.T, n *btcdtest.Node, j btcpool.StratumJob, tmpl *node.Template) *wire.MsgBlock {
	t.Helper()
	cb1, err := j.Coinbase1Bytes()
	if err != nil {
		t.Fatal(err)
	}
	cb2, err := j.Coinbase2Bytes()
	if err != nil {
		t.Fatal(err)
	}
	coinbase := completeCoinbase(t, cb1, cb2, []byte{0, 0, 0, 9}, []byte{1, 2, 3, 4, 5, 6, 7, 8})
	if j.WitnessCommitment != "" {
		coinbase.TxIn[0].Witness = wire.TxWitness{make([]byte, 32)} // witness reserved value
	}
	txs := []*wire.MsgTx{coinbase}
	for i, tt := range tmpl.Transactions {
		raw, err := hex.DecodeString(tt.Data)
		if err != nil {
			t.Fatal(err)
		}
		var tx wire.MsgTx
		if err := tx.Deserialize(bytes.NewReader(raw)); err != nil {
			t.Fatalf("template tx %d: %v", i, err)
		}
		txs = append(txs, &tx)
	}
	root := sha.MerkleRoot([32]byte(coinbase.TxHash()), jobBranch(t, &j))
	var utxs []*btcutil.Tx
	for _, tx := range txs {
		utxs = append(utxs, btcutil.NewTx(tx))
	}
	if store := blockchain.BuildMerkleTreeStore(utxs, false); root != [32]byte(*store[len(store)-1]) {
		t.Fatalf("job merkle root %s, btcd %s", sha.DisplayHex(root), store[len(store)-1])
	}
	prev, err := j.PrevHashBytes()
	if err != nil {
		t.Fatal(err)
	}
	block := &wire.MsgBlock{
		Header: wire.BlockHeader{
			Version:    j.NVersion,
			PrevBlock:  chainhash.Hash(prev),
			MerkleRoot: chainhash.Hash(root),
			Timestamp:  time.Unix(int64(j.NTime), 0),
			Bits:       j.NBits,
		},
		Transactions: txs,
	}
	target := blockchain.CompactToBig(j.NBits)
	found := false
	for nonce := uint32(0); nonce < 1<<20; nonce++ {
		block.Header.Nonce = nonce
		h := block.Header.BlockHash()
		if blockchain.HashToBig(&h).Cmp(target) <= 0 {
			found = true
			break
		}
	}
	if !found {
		t.Fatalf("no nonce meets bits %08x", j.NBits)
	}
	if j.WitnessCommitment != "" {
		if err := blockchain.ValidateWitnessCommitment(btcutil.NewBlock(block)); err != nil {
			t.Fatalf("witness commitment: %v", err)
		}
	}
	var buf bytes.Buffer
	if err := block.Serialize(&buf); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := n.Client().SubmitBlock(ctx, hex.EncodeToString(buf.Bytes()))
	if err != nil {
		t.Fatalf("submitblock: %v", err)
	}
	if res.Status != node.SubmitAccepted {
		t.Fatalf("submitblock: %v %q", res.Status, res.Reason)
	}
	count, err := n.Client().GetBlockCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	best, err := n.Client().GetBestBlockHash(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if count != int64(j.Height) || best != block.BlockHash().String() {
		t.Fatalf("after submitting height %d (%s): node at %d (%s)", j.Height, block.BlockHash(), count, best)
	}
	return block
}

// runChain is the end-to-end check on one bus: btcd regtest → gbtmaker →
// RawGbt → jobmaker → StratumJob → block accepted by btcd, for empty
// templates at successive heights and a template with a witness
// transaction.
func runChain(t *testing.T, b bus.Bus) {
	n := btcdtest.Start(t, btcdtest.Options{})
	raws := newRawGbtReader(t, b, DefaultRawGbtTopic)
	jobs := newJobReader(t, b, DefaultJobTopic)
	startJobMaker(t, b, Options{ID: 5, Network: "regtest", PayoutAddress: n.MiningAddress(),
		CoinbaseInfo: "/hashpool-test/"})
	startGbtMaker(t, b, n)

	// Heights 1 to 3: each mined block makes gbtmaker publish the next
	// template and the jobmaker a job for the new height.
	for h := int64(1); h <= 3; h++ {
		j := jobAt(t, jobs, h)
		if j.JobID&0xff != 5 || j.MerkleBranch != "" || j.WitnessCommitment != "" {
			t.Errorf("job %+v", j)
		}
		mineJob(t, n, j, raws.template(j.GbtHash))
	}

	// A witness transaction in the mempool: btcd's template carries it and
	// its bare 32-byte commitment hash. btcd refreshes a template for new
	// mempool transactions only with a new tip (or after 60 s), so mine the
	// next heights from jobs until one carries the transaction.
	wtx := n.AddWitnessTx(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 3 {
		tip, err := n.Client().GetBlockCount(ctx)
		if err != nil {
			t.Fatal(err)
		}
		j := jobAt(t, jobs, tip+1)
		tmpl := raws.template(j.GbtHash)
		block := mineJob(t, n, j, tmpl)
		if len(tmpl.Transactions) == 0 {
			continue
		}
		if len(tmpl.Transactions) != 1 || tmpl.Transactions[0].TxID != wtx.TxID || len(tmpl.DefaultWitnessCommitment) != 64 {
			t.Fatalf("template with the witness tx: %d txs, commitment %q", len(tmpl.Transactions), tmpl.DefaultWitnessCommitment)
		}
		if j.WitnessCommitment != "6a24aa21a9ed"+tmpl.DefaultWitnessCommitment || len(j.MerkleBranch) != 64 {
			t.Errorf("witness job: commitment %q branch %q", j.WitnessCommitment, j.MerkleBranch)
		}
		if got := block.Transactions[1].WitnessHash().String(); got != wtx.WTxID {
			t.Errorf("block carries wtxid %s, want %s", got, wtx.WTxID)
		}
		// And the height after that.
		j = jobAt(t, jobs, tip+2)
		mineJob(t, n, j, raws.template(j.GbtHash))
		return
	}
	t.Fatal("no template carried the witness transaction")
}

func TestChainWithBtcdOnMemBus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts btcd")
	}
	b := mem.New(mem.Options{})
	t.Cleanup(func() { b.Close() })
	runChain(t, b)
}

// TestChainWithBtcdOnKafka runs the same chain over bus/kafka on franz-go's
// in-process cluster (kfake, on 127.0.0.1), with btcpool's topic names.
func TestChainWithBtcdOnKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("starts btcd and a Kafka cluster")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, DefaultRawGbtTopic, DefaultJobTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	b, err := kafka.New(kafka.Config{Brokers: c.ListenAddrs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	runChain(t, b)
}
