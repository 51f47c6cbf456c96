import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

export class CreateRefundDto {
  /** Minor units; default: everything not yet refunded. */
  @ApiPropertyOptional({ example: 1000, description: 'Minor units; default: everything not yet refunded' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(99_999_999)
  amount?: number;
}
