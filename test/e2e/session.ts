/** Signing a browser page in through the web app's own form. */
import type { Page } from 'playwright-core'

export async function signIn(page: Page, base: string, email: string, password: string): Promise<void> {
  await page.goto(base + '/login')
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL('**/board')
}

/** The caret of the focused field, in code points. */
export function caret(page: Page, selector: string): Promise<{ start: number; end: number; value: string }> {
  return page.locator(selector).evaluate((el: HTMLInputElement) => ({
    start: [...el.value.slice(0, el.selectionStart ?? 0)].length,
    end: [...el.value.slice(0, el.selectionEnd ?? 0)].length,
    value: el.value,
  }))
}
