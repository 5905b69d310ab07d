/** A price field with steppers by the instrument's tick size (arrow keys step too). */
import { Input } from '@/components/ui';
import { stepPrice } from './model';

export function PriceInput({ id, value, onChange, tick, invalid, testId, label }: { id: string; value: string; onChange: (v: string) => void; tick: string; invalid?: boolean; testId: string; label: string }) {
  const step = (n: number) => onChange(stepPrice(value || '0', tick, n));
  return (
    <div className="flex">
      <button type="button" tabIndex={-1} aria-label={`${label} down one tick`} className="w-8 shrink-0 rounded-l border border-r-0 border-line bg-raised text-muted hover:text-fg" onClick={() => step(-1)} data-testid={`${testId}-down`}>
        −
      </button>
      <Input
        id={id}
        inputMode="decimal"
        autoComplete="off"
        value={value}
        aria-invalid={invalid}
        aria-describedby={invalid ? `${id}-error` : undefined}
        data-testid={testId}
        onChange={(e) => onChange(e.target.value.replace(/[^\d.]/g, ''))}
        onKeyDown={(e) => {
          if (e.key === 'ArrowUp' || e.key === 'ArrowDown') {
            e.preventDefault();
            e.stopPropagation();
            step(e.key === 'ArrowUp' ? 1 : -1);
          }
        }}
        className="num rounded-none text-right"
      />
      <button type="button" tabIndex={-1} aria-label={`${label} up one tick`} className="w-8 shrink-0 rounded-r border border-l-0 border-line bg-raised text-muted hover:text-fg" onClick={() => step(1)} data-testid={`${testId}-up`}>
        +
      </button>
    </div>
  );
}
