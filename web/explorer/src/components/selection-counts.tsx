import { classColour } from '../charts/scatter-colours';

/**
 * Class counts as a table with a bar per class (the class's colour is the one the checkpoint charts
 * give it, Okabe–Ito); every count is text in the table, so the bars are an aid, not the record.
 */
export function ClassCounts({ counts, testid }: { counts: readonly { label: number; className: string; count: number }[]; testid: string }) {
  const max = Math.max(1, ...counts.map((c) => c.count));
  return (
    <table className="data class-counts" data-testid={testid}>
      <thead>
        <tr>
          <th>Class</th>
          <th className="num">Samples</th>
          <th aria-hidden="true" />
        </tr>
      </thead>
      <tbody>
        {counts.map((c) => (
          <tr key={c.label} data-testid={`${testid}-row`} data-label={c.label} data-count={c.count}>
            <td>
              <span className="swatch" style={{ background: classColour(c.label) }} aria-hidden="true" /> {c.className}
            </td>
            <td className="num" data-testid={`${testid}-${c.label}`}>
              {c.count}
            </td>
            <td className="bar-cell" aria-hidden="true">
              <span className="count-bar" style={{ width: `${(100 * c.count) / max}%`, background: classColour(c.label) }} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
