import { useState, type FormEvent } from 'react';
import { useSession } from '../session';

/**
 * The header bar's key entry: shown open when the server asks for a key, as a small "API key" control
 * otherwise. The key stays in this browser (localStorage) and goes with every request.
 */
export function ApiKeyEntry() {
  const session = useSession();
  const [open, setOpen] = useState(false);
  const [draft, setDraft] = useState('');
  const showForm = open || session.needsKey;

  const submit = (event: FormEvent) => {
    event.preventDefault();
    session.setKey(draft.trim());
    setDraft('');
    setOpen(false);
  };

  return (
    <div className="api-key">
      <span className="role" data-testid="viewer-role">
        {session.role ? session.role.toLowerCase() : session.needsKey ? 'no key' : '…'}
      </span>
      {showForm ? (
        <form onSubmit={submit} aria-label="API key">
          <label>
            API key{' '}
            <input
              type="password"
              name="apiKey"
              autoComplete="off"
              placeholder="tgt_…"
              value={draft}
              onChange={(e) => setDraft(e.target.value)}
              aria-invalid={session.needsKey && session.key ? true : undefined}
            />
          </label>
          <button type="submit">Use key</button>
          {!session.needsKey && (
            <button type="button" onClick={() => setOpen(false)}>
              Cancel
            </button>
          )}
        </form>
      ) : (
        <button type="button" onClick={() => setOpen(true)}>
          {session.key ? 'Change key' : 'API key'}
        </button>
      )}
      {session.key && !showForm && (
        <button type="button" onClick={() => session.setKey('')}>
          Forget key
        </button>
      )}
      {session.needsKey && (
        <p className="notice" role="alert">
          {session.key ? 'The server refused this key.' : 'This server requires an API key.'}
        </p>
      )}
    </div>
  );
}
