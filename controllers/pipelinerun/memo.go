package pipelinerun

import (
	"container/list"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/flow-ci/flow-ci/internal/pipeline"
	"github.com/flow-ci/flow-ci/internal/runstate"
)

// maxMemoBytes bounds the definitions the memo holds, each counted as the larger of its
// file and its parsed pipeline (a matrix expands a file); a run whose entry was evicted
// reads its ConfigMap once more.
const maxMemoBytes = 32 << 20

// pinned is a run's definition as read from its ConfigMap, and its step graph.
type pinned struct {
	run    types.UID
	commit string
	def    *pipeline.Definition
	graph  runstate.Graph
	size   int64
}

// definitionMemo keeps the parsed definitions of active runs by run UID, least recently
// used first out, so that a pass neither reads the ConfigMap nor parses the file nor
// builds the graph again. Definitions are immutable once pinned, and a run's branch is
// fixed before its definition is read, so an entry never goes stale.
type definitionMemo struct {
	mu    sync.Mutex
	size  int64
	byRun map[types.UID]*list.Element
	lru   list.List
}

func (m *definitionMemo) get(run types.UID) (*pinned, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.byRun[run]
	if !ok {
		return nil, false
	}
	m.lru.MoveToFront(e)
	return e.Value.(*pinned), true
}

func (m *definitionMemo) put(p *pinned) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byRun == nil {
		m.byRun = map[types.UID]*list.Element{}
	}
	if e, ok := m.byRun[p.run]; ok {
		m.size -= e.Value.(*pinned).size
		m.lru.Remove(e)
	}
	m.byRun[p.run] = m.lru.PushFront(p)
	m.size += p.size
	for m.size > maxMemoBytes && m.lru.Len() > 1 {
		m.removeLocked(m.lru.Back())
	}
}

// forget drops a run that ended.
func (m *definitionMemo) forget(run types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.byRun[run]; ok {
		m.removeLocked(e)
	}
}

func (m *definitionMemo) removeLocked(e *list.Element) {
	p := e.Value.(*pinned)
	m.lru.Remove(e)
	delete(m.byRun, p.run)
	m.size -= p.size
}
