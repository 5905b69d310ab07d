/** Submitting a form that carries secrets. The secret inputs are uncontrolled (the DOM holds what
 * is typed, React state never does); at submit the values are read once, checked, and the body is
 * handed to the request through a ref that is emptied as the request starts, so neither component
 * state nor the mutation cache (no variables, gcTime 0) keeps a secret. Every secret input is
 * emptied after each submit, whatever the answer. */
import { useMutation } from '@tanstack/react-query';
import { useRef, useState, type FormEvent } from 'react';
import { clearSecrets, readForm, splitServerErrors, type Checked, type Errors, type Values } from './validate';

export function useSecretForm<B, R>({
  check,
  send,
  fields,
  onSuccess,
}: {
  check: (values: Values) => Checked<B>;
  send: (body: B) => Promise<R>;
  fields: readonly string[];
  onSuccess: (result: R) => void;
}) {
  const formRef = useRef<HTMLFormElement>(null);
  const pending = useRef<B | null>(null);
  const [errors, setErrors] = useState<Errors>({});
  const [general, setGeneral] = useState<string | null>(null);
  const mutation = useMutation({
    mutationFn: () => {
      const body = pending.current as B;
      pending.current = null;
      return send(body);
    },
    gcTime: 0,
    onSuccess: (result) => {
      formRef.current?.reset();
      onSuccess(result);
    },
    onError: (err) => {
      const split = splitServerErrors(err, fields);
      setErrors(split.fields);
      setGeneral(split.general);
    },
  });

  const onSubmit = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    if (mutation.isPending) return;
    const form = e.currentTarget;
    const { body, errors: found } = check(readForm(form));
    clearSecrets(form);
    setErrors(found);
    setGeneral(null);
    if (!body) return;
    pending.current = body;
    mutation.mutate();
  };

  const reset = () => {
    setErrors({});
    setGeneral(null);
    formRef.current?.reset();
  };

  return { formRef, onSubmit, errors, general, busy: mutation.isPending, reset };
}
