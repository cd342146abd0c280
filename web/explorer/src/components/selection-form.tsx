import type { CheckpointWeighting, OrderDirection, ScalarTerm, SelectionMethod, SelectionStrategyInput } from '../gql/graphql';

/**
 * The strategy form of the selection builder: checkpoints (one, or several of the run weighted as
 * LESS does), the term and direction, the method and its parameter, and the candidates' filter. It
 * holds a draft (strings as typed) and turns it into a SelectionStrategyInput, or says what is
 * missing, so the preview never sends a half-typed strategy.
 */

export interface CheckpointChoice {
  id: string;
  step: number;
  learningRate: number | null;
  /** Rows of terms stored at the checkpoint. */
  rows: number;
}

export interface StrategyDraft {
  checkpointIds: string[];
  term: ScalarTerm;
  direction: OrderDirection;
  method: SelectionMethod;
  /** k for TOP_K, BALANCED_TOP_K and STRATIFIED (by count); fraction for TOP_FRACTION and STRATIFIED (by fraction). */
  k: string;
  fraction: string;
  threshold: string;
  /** STRATIFIED takes k or a fraction. */
  stratifiedBy: 'k' | 'fraction';
  weighting: CheckpointWeighting;
  /** CUSTOM: one weight per chosen checkpoint, in the order of checkpointIds. */
  weights: string;
  subset: string;
  /** kCross's target set: a split of the dataset or a saved selection. */
  targetKind: 'split' | 'selection';
  targetSplit: string;
  targetSelectionId: string;
  splits: string[];
  labels: number[];
  correct: '' | 'true' | 'false';
}

export const TERMS: { value: ScalarTerm; label: string }[] = [
  { value: 'K_NORM', label: '‖K‖_F (kNorm)' },
  { value: 'K_CROSS', label: 'kCross against a target set' },
  { value: 'K_TRACE', label: 'Tr K (kTrace)' },
  { value: 'LOSS', label: 'loss' },
  { value: 'G_NORM', label: '‖G‖ (EL2N)' },
  { value: 'A_NORM', label: '‖A‖_F (aNorm)' },
  { value: 'H_TRACE', label: 'Tr H (hTrace)' },
  { value: 'H_MIN_EIG', label: 'λ_min(H)' },
];

export const METHODS: { value: SelectionMethod; label: string }[] = [
  { value: 'TOP_K', label: 'top k' },
  { value: 'TOP_FRACTION', label: 'top fraction' },
  { value: 'THRESHOLD', label: 'threshold' },
  { value: 'BALANCED_TOP_K', label: 'balanced top k (equal per class)' },
  { value: 'STRATIFIED', label: 'stratified (per class in proportion)' },
];

const WEIGHTINGS: { value: CheckpointWeighting; label: string }[] = [
  { value: 'EQUAL', label: 'equal' },
  { value: 'LEARNING_RATE', label: 'by learning rate (LESS)' },
  { value: 'CUSTOM', label: 'custom weights' },
];

export function initialDraft(checkpointIds: string[]): StrategyDraft {
  return {
    checkpointIds,
    term: 'K_NORM',
    direction: 'DESC',
    method: 'TOP_K',
    k: '10',
    fraction: '0.1',
    threshold: '',
    stratifiedBy: 'k',
    weighting: 'EQUAL',
    weights: '',
    subset: 'all',
    targetKind: 'split',
    targetSplit: 'train',
    targetSelectionId: '',
    splits: [],
    labels: [],
    correct: '',
  };
}

const usesK = (d: StrategyDraft) => d.method === 'TOP_K' || d.method === 'BALANCED_TOP_K' || (d.method === 'STRATIFIED' && d.stratifiedBy === 'k');
const usesFraction = (d: StrategyDraft) => d.method === 'TOP_FRACTION' || (d.method === 'STRATIFIED' && d.stratifiedBy === 'fraction');

/** The strategy the draft describes, or the first thing that keeps it from being one. */
export function toStrategy(d: StrategyDraft): { strategy: SelectionStrategyInput } | { problem: string } {
  if (d.checkpointIds.length === 0) return { problem: 'Choose at least one checkpoint.' };
  const strategy: SelectionStrategyInput = { checkpointIds: d.checkpointIds, term: d.term, direction: d.direction, method: d.method, subset: d.subset || 'all' };
  if (usesK(d)) {
    const k = Number(d.k);
    if (!d.k.trim() || !Number.isInteger(k) || k < 1) return { problem: 'k must be a whole number ≥ 1.' };
    strategy.k = k;
  }
  if (usesFraction(d)) {
    const fraction = Number(d.fraction);
    if (!d.fraction.trim() || !(fraction > 0 && fraction <= 1)) return { problem: 'The fraction must be in (0, 1].' };
    strategy.fraction = fraction;
  }
  if (d.method === 'THRESHOLD') {
    const threshold = Number(d.threshold);
    if (!d.threshold.trim() || !Number.isFinite(threshold)) return { problem: 'Give a threshold.' };
    strategy.threshold = threshold;
  }
  if (d.checkpointIds.length > 1) {
    strategy.weighting = d.weighting;
    if (d.weighting === 'CUSTOM') {
      const weights = d.weights.split(/[\s,]+/).filter(Boolean).map(Number);
      if (weights.length !== d.checkpointIds.length || weights.some((w) => !Number.isFinite(w) || w < 0)) {
        return { problem: `Give ${d.checkpointIds.length} weights ≥ 0, one per checkpoint, separated by commas.` };
      }
      strategy.weights = weights;
    }
  }
  if (d.term === 'K_CROSS') {
    if (d.targetKind === 'split') {
      if (!d.targetSplit) return { problem: 'kCross needs a target split.' };
      strategy.target = { split: d.targetSplit };
    } else {
      if (!d.targetSelectionId) return { problem: 'kCross needs a target selection.' };
      strategy.target = { selectionId: d.targetSelectionId };
    }
  }
  const filter: NonNullable<SelectionStrategyInput['filter']> = {};
  if (d.splits.length) filter.splits = d.splits;
  if (d.labels.length) filter.labels = d.labels;
  if (d.correct) filter.correct = d.correct === 'true';
  if (Object.keys(filter).length) strategy.filter = filter;
  return { strategy };
}

const toggle = <T,>(list: T[], value: T, on: boolean) => (on ? [...list.filter((v) => v !== value), value] : list.filter((v) => v !== value));

export function SelectionForm({
  draft,
  onChange,
  checkpoints,
  splits,
  classNames,
  subsets,
  targetSelections,
}: {
  draft: StrategyDraft;
  onChange(draft: StrategyDraft): void;
  checkpoints: CheckpointChoice[];
  splits: string[];
  classNames: string[];
  subsets: string[];
  targetSelections: { id: string; name: string }[];
}) {
  const set = (patch: Partial<StrategyDraft>) => onChange({ ...draft, ...patch });
  const several = draft.checkpointIds.length > 1;
  return (
    <form className="selection-form" aria-label="Selection strategy" onSubmit={(e) => e.preventDefault()} data-testid="selection-form">
      <fieldset>
        <legend>Checkpoints</legend>
        <p className="muted">One checkpoint, or several for a weighted mean of the term across them (as LESS weights checkpoints).</p>
        <div className="checkpoint-choices">
          {checkpoints.map((c) => (
            <label key={c.id}>
              <input
                type="checkbox"
                checked={draft.checkpointIds.includes(c.id)}
                onChange={(e) => set({ checkpointIds: checkpoints.map((x) => x.id).filter((id) => (id === c.id ? e.target.checked : draft.checkpointIds.includes(id))) })}
                data-testid={`checkpoint-${c.id}`}
              />{' '}
              step {c.step}
              <span className="muted">
                {' '}
                ({c.rows} rows{c.learningRate !== null ? `, η ${c.learningRate}` : ''})
              </span>
            </label>
          ))}
        </div>
        {several && (
          <div className="toolbar">
            <label>
              Weighting{' '}
              <select value={draft.weighting} onChange={(e) => set({ weighting: e.target.value as CheckpointWeighting })} data-testid="weighting">
                {WEIGHTINGS.map((w) => (
                  <option key={w.value} value={w.value}>
                    {w.label}
                  </option>
                ))}
              </select>
            </label>
            {draft.weighting === 'CUSTOM' && (
              <label>
                Weights{' '}
                <input value={draft.weights} onChange={(e) => set({ weights: e.target.value })} placeholder="1, 2, 3" data-testid="weights" />
              </label>
            )}
          </div>
        )}
      </fieldset>

      <fieldset>
        <legend>Score</legend>
        <div className="toolbar">
          <label>
            Term{' '}
            <select value={draft.term} onChange={(e) => set({ term: e.target.value as ScalarTerm })} data-testid="term">
              {TERMS.map((t) => (
                <option key={t.value} value={t.value}>
                  {t.label}
                </option>
              ))}
            </select>
          </label>
          <label>
            Best are{' '}
            <select value={draft.direction} onChange={(e) => set({ direction: e.target.value as OrderDirection })} data-testid="direction">
              <option value="DESC">largest</option>
              <option value="ASC">smallest</option>
            </select>
          </label>
          {subsets.length > 1 && (
            <label>
              Parameters{' '}
              <select value={draft.subset} onChange={(e) => set({ subset: e.target.value })} data-testid="subset">
                {subsets.map((s) => (
                  <option key={s} value={s}>
                    {s}
                  </option>
                ))}
              </select>
            </label>
          )}
        </div>
        {draft.term === 'K_CROSS' && (
          <div className="toolbar">
            <label>
              Target set{' '}
              <select value={draft.targetKind} onChange={(e) => set({ targetKind: e.target.value as 'split' | 'selection' })} data-testid="target-kind">
                <option value="split">a split</option>
                <option value="selection">a saved selection</option>
              </select>
            </label>
            {draft.targetKind === 'split' ? (
              <label>
                Split{' '}
                <select value={draft.targetSplit} onChange={(e) => set({ targetSplit: e.target.value })} data-testid="target-split">
                  {splits.map((s) => (
                    <option key={s} value={s}>
                      {s}
                    </option>
                  ))}
                </select>
              </label>
            ) : (
              <label>
                Selection{' '}
                <select value={draft.targetSelectionId} onChange={(e) => set({ targetSelectionId: e.target.value })} data-testid="target-selection">
                  <option value="">—</option>
                  {targetSelections.map((s) => (
                    <option key={s.id} value={s.id}>
                      {s.name}
                    </option>
                  ))}
                </select>
              </label>
            )}
          </div>
        )}
      </fieldset>

      <fieldset>
        <legend>Method</legend>
        <div className="toolbar">
          <label>
            Method{' '}
            <select value={draft.method} onChange={(e) => set({ method: e.target.value as SelectionMethod })} data-testid="method">
              {METHODS.map((m) => (
                <option key={m.value} value={m.value}>
                  {m.label}
                </option>
              ))}
            </select>
          </label>
          {draft.method === 'STRATIFIED' && (
            <label>
              Size by{' '}
              <select value={draft.stratifiedBy} onChange={(e) => set({ stratifiedBy: e.target.value as 'k' | 'fraction' })} data-testid="stratified-by">
                <option value="k">count k</option>
                <option value="fraction">fraction</option>
              </select>
            </label>
          )}
          {usesK(draft) && (
            <label>
              k{' '}
              <input type="number" min={1} step={1} value={draft.k} onChange={(e) => set({ k: e.target.value })} data-testid="k" />
            </label>
          )}
          {usesFraction(draft) && (
            <label>
              Fraction{' '}
              <input type="number" min={0} max={1} step={0.01} value={draft.fraction} onChange={(e) => set({ fraction: e.target.value })} data-testid="fraction" />
            </label>
          )}
          {draft.method === 'THRESHOLD' && (
            <label>
              Threshold ({draft.direction === 'DESC' ? 'score ≥' : 'score ≤'}){' '}
              <input type="number" step="any" value={draft.threshold} onChange={(e) => set({ threshold: e.target.value })} data-testid="threshold" />
            </label>
          )}
        </div>
      </fieldset>

      <fieldset>
        <legend>Candidates</legend>
        <div className="toolbar">
          <span>Splits:</span>
          {splits.map((s) => (
            <label key={s}>
              <input type="checkbox" checked={draft.splits.includes(s)} onChange={(e) => set({ splits: toggle(draft.splits, s, e.target.checked) })} data-testid={`split-${s}`} /> {s}
            </label>
          ))}
          <span className="muted">(none ticked: every split)</span>
        </div>
        <div className="toolbar">
          <span>Classes:</span>
          {classNames.map((name, label) => (
            <label key={label}>
              <input type="checkbox" checked={draft.labels.includes(label)} onChange={(e) => set({ labels: toggle(draft.labels, label, e.target.checked) })} data-testid={`label-${label}`} />{' '}
              {name}
            </label>
          ))}
          <span className="muted">(none ticked: every class)</span>
        </div>
        <div className="toolbar">
          <label>
            Classified{' '}
            <select value={draft.correct} onChange={(e) => set({ correct: e.target.value as StrategyDraft['correct'] })} data-testid="correct">
              <option value="">either way</option>
              <option value="true">correctly</option>
              <option value="false">wrongly</option>
            </select>
          </label>
        </div>
      </fieldset>
    </form>
  );
}
