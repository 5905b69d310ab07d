/** Admin reads, all under qk.admin (one invalidation refreshes the lot). Enabled for admins only:
 * the page never asks the API for what it would refuse. */
import { keepPreviousData, useQuery } from '@tanstack/react-query';
import { api } from '@/api/client';
import { qk } from '@/api/queryClient';
import { useAuthStore } from '@/stores/auth';
import type { AdminUser, RiskLimitsView } from '@/api/types';
import type { AuditEntry, KillSwitchView } from './types';

export const adminKeys = {
  users: [...qk.admin, 'users'] as const,
  limits: [...qk.admin, 'risk-limits'] as const,
  killSwitch: [...qk.admin, 'kill-switch'] as const,
  audit: [...qk.admin, 'audit'] as const,
  auditPage: (limit: number) => [...qk.admin, 'audit', limit] as const,
};

export const useIsAdmin = () => useAuthStore((s) => s.user?.role === 'admin');

export function useAdminUsers() {
  const enabled = useIsAdmin();
  return useQuery({ queryKey: adminKeys.users, queryFn: () => api.get<{ items: AdminUser[] }>('/admin/users'), enabled });
}

export function useRiskLimits() {
  const enabled = useIsAdmin();
  return useQuery({ queryKey: adminKeys.limits, queryFn: () => api.get<RiskLimitsView>('/admin/risk-limits'), enabled });
}

export function useKillSwitch() {
  const enabled = useIsAdmin();
  return useQuery({ queryKey: adminKeys.killSwitch, queryFn: () => api.get<KillSwitchView>('/admin/kill-switch'), enabled });
}

export function useAudit(limit: number) {
  const enabled = useIsAdmin();
  return useQuery({
    queryKey: adminKeys.auditPage(limit),
    queryFn: () => api.get<{ items: AuditEntry[] }>('/admin/audit', { query: { limit } }),
    enabled,
    placeholderData: keepPreviousData,
  });
}

/** user id -> email, for naming targets and admins. */
export function emailsOf(users: readonly AdminUser[] | undefined): Map<string, string> {
  return new Map((users ?? []).map((u) => [u.id, u.email]));
}
