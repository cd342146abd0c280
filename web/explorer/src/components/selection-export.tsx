import type { MouseEvent } from 'react';
import { useSession } from '../session';

/**
 * A download link of an export path (`Selection.exportUrl`). Without a key it is a plain link the
 * browser downloads; with one, a plain link would go without the Authorization header (a browser
 * sends none on navigation), so the click fetches the file with the key and saves it from a blob.
 * The href stays the export's path either way, so it can be copied and used with curl and a key.
 */
export function ExportLink({ href, format, name }: { href: string; format: 'CSV' | 'JSONL'; name: string }) {
  const { key } = useSession();
  const download = async (event: MouseEvent<HTMLAnchorElement>) => {
    if (!key) return;
    event.preventDefault();
    const response = await fetch(href, { headers: { authorization: `Bearer ${key}` } });
    if (!response.ok) {
      alert(`Export refused: HTTP ${response.status} ${await response.text()}`);
      return;
    }
    const url = URL.createObjectURL(await response.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = `${name}.${format.toLowerCase()}`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };
  return (
    <a href={href} download={`${name}.${format.toLowerCase()}`} onClick={download} data-testid={`export-${format.toLowerCase()}`}>
      {format}
    </a>
  );
}
