/**
 * useTextField: binds an <input> or <textarea> to a task's title or
 * description. Each keystroke becomes a text op submitted through the SDK;
 * remote ops are applied to the element with its caret and selection moved
 * through them, so they stay where the person put them.
 */
import { useCallback, useEffect, useRef } from 'react'
import type { TaskHandle } from '../client/index.js'
import { editOp, toCodePoints, toUtf16, transformCaret } from './text.js'
import type { TextOp } from '../domain/index.js'

type TextElement = HTMLInputElement | HTMLTextAreaElement

export interface TextFieldOptions {
  /** Called with this client's caret (code points) when it moves or the text changes, null on blur: share it as presence. */
  onCaret?(caret: { start: number; end: number } | null, typing: boolean): void
  /** An edit the SDK refused (too long, task deleted): the element shows the task's text again. */
  onError?(err: Error): void
}

/** Returns the ref to put on the element. `task` may be null while loading. */
export function useTextField(task: TaskHandle | null, field: 'title' | 'description', opts: TextFieldOptions = {}): (el: TextElement | null) => void {
  const elRef = useRef<TextElement | null>(null)
  const shown = useRef('')
  const optsRef = useRef(opts)
  optsRef.current = opts

  const caret = (el: TextElement, typing: boolean) => {
    const v = el.value
    optsRef.current.onCaret?.({ start: toCodePoints(v, el.selectionStart ?? 0), end: toCodePoints(v, el.selectionEnd ?? 0) }, typing)
  }

  // The element shows what the task holds; the task's changes reach the element.
  useEffect(() => {
    const el = elRef.current
    if (!task || !el) return
    const show = (text: string, op: TextOp | null) => {
      if (el.value === text) return
      const focused = document.activeElement === el
      const old = el.value
      let start = el.selectionStart ?? 0
      let end = el.selectionEnd ?? 0
      const dir = el.selectionDirection ?? 'none'
      if (op && old === shown.current) {
        start = toUtf16(text, transformCaret(toCodePoints(old, start), op))
        end = toUtf16(text, transformCaret(toCodePoints(old, end), op))
      } else {
        // Replaced whole (a reload): keep the caret at the same distance from the end when the start changed.
        const d = editOp(old, text)
        start = toUtf16(text, transformCaret(toCodePoints(old, start), d))
        end = toUtf16(text, transformCaret(toCodePoints(old, end), d))
      }
      el.value = text
      shown.current = text
      if (focused) el.setSelectionRange(start, end, dir)
    }
    if (task.loaded) {
      el.value = task.snapshot[field]
      shown.current = el.value
    }
    const off = task.on('change', (e) => {
      if (!task.loaded) return
      const op = e.op ? ((e.op as Record<string, unknown>)[field] as TextOp | undefined) : null
      if (e.op && op === undefined) return
      show(task.snapshot[field], op ?? null)
      if (!e.local && document.activeElement === el) caret(el, false)
    })
    const input = (ev: Event) => {
      if ((ev as InputEvent).isComposing) return
      const before = shown.current
      const after = el.value
      const textOp = editOp(before, after, el.selectionEnd ?? undefined)
      if (textOp.length === 0) return
      shown.current = after
      try {
        task.submit({ [field]: textOp })
      } catch (err) {
        optsRef.current.onError?.(err as Error)
        shown.current = before
        if (task.loaded) show(task.snapshot[field], null)
        return
      }
      caret(el, true)
    }
    const moved = () => caret(el, false)
    const blur = () => optsRef.current.onCaret?.(null, false)
    el.addEventListener('input', input)
    el.addEventListener('compositionend', input)
    el.addEventListener('select', moved)
    el.addEventListener('keyup', moved)
    el.addEventListener('click', moved)
    el.addEventListener('focus', moved)
    el.addEventListener('blur', blur)
    return () => {
      off()
      el.removeEventListener('input', input)
      el.removeEventListener('compositionend', input)
      el.removeEventListener('select', moved)
      el.removeEventListener('keyup', moved)
      el.removeEventListener('click', moved)
      el.removeEventListener('focus', moved)
      el.removeEventListener('blur', blur)
    }
  }, [task, field])

  return useCallback((el: TextElement | null) => {
    elRef.current = el
  }, [])
}
