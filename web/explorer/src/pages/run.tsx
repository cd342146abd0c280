export function RunPage({ id }: { id: string }) {
  return (
    <section>
      <h1>Run {id}</h1>
    </section>
  );
}
